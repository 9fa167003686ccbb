package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The grafana service provisions the data source and the dashboards of
// configs/grafana: the dashboard provider's path is where compose.yaml
// mounts configs/grafana/dashboards, that folder holds dashboards, and
// every panel queries the provisioned data source by its uid.
func TestComposeGrafana(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["grafana"]
	ms := mounts(t, g)
	if mt := mountFor(ms, "/etc/grafana/provisioning/dashboards/p2pgrid.yaml"); mt == nil || mt.source != "../configs/grafana/provisioning" {
		t.Errorf("Grafana's dashboard provisioning is mounted from %v, want ../configs/grafana/provisioning", mt)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Folder, Type string
			DisableDeletion    bool `yaml:"disableDeletion"`
			AllowUIUpdates     bool `yaml:"allowUiUpdates"`
			UpdateInterval     int  `yaml:"updateIntervalSeconds"`
			Options            struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	strictYAML(t, "../configs/grafana/provisioning/dashboards/p2pgrid.yaml", &prov)
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard provisioning %+v: want apiVersion 1 and one file provider", prov)
	}
	path := prov.Providers[0].Options.Path
	mt := mountFor(ms, path)
	if mt == nil || mt.source != "../configs/grafana/dashboards" || mt.target != path {
		t.Fatalf("the provider reads %s, mounted from %v; want ../configs/grafana/dashboards mounted there", path, mt)
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `yaml:"isDefault"`
			JSONData                     struct {
				DBName   string `yaml:"dbName"`
				HTTPMode string `yaml:"httpMode"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	strictYAML(t, "../configs/grafana/provisioning/datasources/influxdb.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID == "" || ds.Datasources[0].Type != "influxdb" {
		t.Fatalf("data sources %+v: want one influxdb with a uid", ds.Datasources)
	}
	uid := ds.Datasources[0].UID

	files, _ := filepath.Glob(filepath.Join(mt.source, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s", mt.source)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					Type, UID string
				} `json:"datasource"`
				Targets []struct {
					Datasource struct{ Type, UID string } `json:"datasource"`
					Query      string                     `json:"query"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q, title %q, %d panels", f, d.UID, d.Title, len(d.Panels))
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != uid || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q: data source %+v, %d queries; want uid %s", f, p.Title, p.Datasource, len(p.Targets), uid)
			}
			for _, q := range p.Targets {
				if q.Datasource.UID != uid || q.Query == "" {
					t.Errorf("%s: panel %q: query %q on %+v", f, p.Title, q.Query, q.Datasource)
				}
			}
		}
	}
}

// strictYAML decodes the file at path into v, unknown keys refused.
func strictYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
