package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// A meter the project does not ship is one file in profile_dir away.
func TestDevicesUseTheUsersProfiles(t *testing.T) {
	dir := t.TempDir()
	sdm, err := configs.Devices.ReadFile("devices/sdm630.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mine := strings.Replace(string(sdm), "name: sdm630", "name: mymeter", 1)
	if err := os.WriteFile(filepath.Join(dir, "mymeter.yaml"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Devices = []config.Device{{Name: "grid", URL: "tcp://127.0.0.1:1", Unit: 1, Profile: "mymeter", Role: config.RoleGrid, Poll: time.Second}}
	log := slog.New(slog.DiscardHandler)

	if _, _, err := Devices(cfg, time.Now, log); err == nil || !strings.Contains(err.Error(), `"mymeter"`) {
		t.Errorf("without profile_dir: %v", err)
	}
	cfg.ProfileDir = dir
	devs, closeAll, err := Devices(cfg, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(devs) != 1 || devs[0].Name != "grid" || devs[0].Role != config.RoleGrid {
		t.Errorf("devices %+v", devs)
	}
}
