package operator

import (
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
)

// The block add-app appends is the one configs/mosquitto/README.md shows
// (which TestShippedACLPrivacy runs against Mosquitto), for the home and
// login given.
func TestAppACLBlockIsTheREADMEs(t *testing.T) {
	got := appACLBlock("lindenweg", "home-17", "home-17-app")
	want := mqtttest.AppBlock(t, "lindenweg", "home-17", "home-17-app")
	if !strings.HasSuffix(got, "\n"+strings.TrimLeft(want, "\n")) {
		t.Errorf("add-app's block:\n%s\nthe README's:\n%s", got, want)
	}
	if other := appACLBlock("c2", "home-3", "phone"); !strings.Contains(other, "user phone\ntopic read p2pgrid/v1/c2/telemetry/home-3\n") ||
		!strings.Contains(other, "topic read p2pgrid/v1/c2/app/home-3/+\ntopic read homeassistant/sensor/p2pgrid_home-3/+/config\n") ||
		!strings.HasSuffix(other, "topic deny homeassistant/sensor/p2pgrid_phone/+/config\n") {
		t.Errorf("block for another community, home and login:\n%s", other)
	}
}

// The block add-dashboard appends is the README's, for the login given.
func TestDashboardACLBlockIsTheREADMEs(t *testing.T) {
	got := dashboardACLBlock("lindenweg", "dashboard")
	want := mqtttest.DashboardBlock(t, "lindenweg", "dashboard")
	if !strings.HasSuffix(got, "\n"+strings.TrimLeft(want, "\n")) {
		t.Errorf("add-dashboard's block:\n%s\nthe README's:\n%s", got, want)
	}
	if other := dashboardACLBlock("c2", "view"); !strings.Contains(other, "user view\ntopic read p2pgrid/v1/c2/status/+\n") ||
		!strings.HasSuffix(other, "topic deny homeassistant/sensor/p2pgrid_view/+/config\n") {
		t.Errorf("block for another community and login:\n%s", other)
	}
}
