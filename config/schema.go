package config

import (
	"reflect"
	"strings"
)

// rawLimitsType is the type whose keys are limit keys.
var rawLimitsType = reflect.TypeFor[rawLimits]()

// tomlFields returns the fields of struct type t by toml key, flattening
// embedded structs as go-toml does.
func tomlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range tomlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// schemaType returns the Go type the raw schema holds at key (parts without
// array indices), or nil when there is no such key.
func schemaType(key []string) reflect.Type {
	t := reflect.TypeFor[rawConfig]()
	for _, part := range key {
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		ft, ok := tomlFields(t)[part]
		if !ok {
			return nil
		}
		t = ft
	}
	return t
}

// shapeMessage explains a value go-toml could not store because the schema
// wants a table or an array of tables there; "" when that is not the case.
func shapeMessage(key []string) string {
	t := schemaType(key)
	if t == nil || len(key) == 0 {
		return ""
	}
	name := strings.Join(key, ".")
	switch {
	case t.Kind() == reflect.Struct:
		return "must be a table ([" + name + "])"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "must be an array of tables ([[" + name + "]])"
	}
	return ""
}
