// helm_render renders a Helm chart the way `helm template` does, for
// machines without helm (it is not in Debian bookworm): Go's text/template
// with the sprig functions (Debian's golang-github-masterminds-sprig-dev)
// plus Helm's own include, tpl, required, toYaml and fromYaml, the values of
// values.yaml deep-merged with -f files, and .Chart, .Release and .Values.
//
// usage: helm_render CHART_DIR [-f VALUES.yaml]... [--name RELEASE]
//
//	[--namespace NS]
//
// Prints every rendered template as YAML documents, each after a
// "# Source: <chart>/templates/<file>" line; exits 1 with the template's
// error otherwise. Not covered: subcharts, .Capabilities, .Files, lookup,
// hooks and NOTES.txt (the imbridge chart uses none of them).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return out, nil
}

// mergeValues deep-merges src into dst (src wins; maps merge, the rest is
// replaced), as helm does with -f files.
func mergeValues(dst, src map[string]interface{}) {
	for key, value := range src {
		srcMap, srcIsMap := value.(map[string]interface{})
		dstMap, dstIsMap := dst[key].(map[string]interface{})
		if srcIsMap && dstIsMap {
			mergeValues(dstMap, srcMap)
		} else {
			dst[key] = value
		}
	}
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	out := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		out["Error"] = err.Error()
	}
	return out
}

func run(args []string) error {
	var chartDir, release, namespace = "", "release", "default"
	var valueFiles []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-f", "--values", "--name", "--namespace":
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", args[i])
			}
			switch args[i] {
			case "--name":
				release = args[i+1]
			case "--namespace":
				namespace = args[i+1]
			default:
				valueFiles = append(valueFiles, args[i+1])
			}
			i++
		default:
			if chartDir != "" {
				return fmt.Errorf("unexpected argument %q", args[i])
			}
			chartDir = args[i]
		}
	}
	if chartDir == "" {
		return errors.New("usage: helm_render CHART_DIR [-f VALUES.yaml]... [--name RELEASE] [--namespace NS]")
	}

	chart, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, file := range valueFiles {
		override, err := readYAML(file)
		if err != nil {
			return err
		}
		mergeValues(values, override)
	}
	chartName, _ := chart["name"].(string)
	data := map[string]interface{}{
		"Values": values,
		"Chart": map[string]interface{}{
			"Name":        chart["name"],
			"Version":     chart["version"],
			"AppVersion":  chart["appVersion"],
			"Description": chart["description"],
		},
		"Release": map[string]interface{}{
			"Name":      release,
			"Namespace": namespace,
			"Service":   "Helm",
			"IsInstall": true,
		},
	}

	root := template.New(chartName).Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(message)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var out bytes.Buffer
		if err := root.ExecuteTemplate(&out, name, data); err != nil {
			return "", err
		}
		return out.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			return "", err
		}
		return out.String(), nil
	}
	root.Funcs(funcs)

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var rendered []string
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		name := chartName + "/templates/" + filepath.Base(file)
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return err
		}
		base := filepath.Base(file)
		if !strings.HasPrefix(base, "_") && (strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			rendered = append(rendered, name)
		}
	}
	var out bytes.Buffer
	for _, name := range rendered {
		var doc bytes.Buffer
		if err := root.ExecuteTemplate(&doc, name, data); err != nil {
			return err
		}
		text := strings.ReplaceAll(doc.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(text))
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "helm_render:", err)
		os.Exit(1)
	}
}
