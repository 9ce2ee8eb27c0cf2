// A run's input form generated from the workflow's input_schema (JSON Schema): one
// labelled field per property (enum → select, boolean → checkbox, number → number,
// string → text, anything else → JSON); without a schema, one JSON field.

import { h } from "./ui.js";

function fieldFor(name, schema, required) {
  const id = `input-${name}`;
  const description = schema.description ? h("span", { class: "hint", id: `${id}-hint` }, ` ${schema.description}`) : null;
  const common = { id, name, required: required || undefined, "aria-describedby": description ? `${id}-hint` : undefined };
  let control;
  let read;
  if (Array.isArray(schema.enum)) {
    control = h("select", common, schema.enum.map((option) =>
      h("option", { value: JSON.stringify(option), selected: option === schema.default }, String(option))));
    read = () => JSON.parse(control.value);
  } else if (schema.type === "boolean") {
    control = h("input", { ...common, type: "checkbox", required: undefined, checked: schema.default === true });
    read = () => control.checked;
  } else if (schema.type === "integer" || schema.type === "number") {
    control = h("input", { ...common, type: "number", step: schema.type === "integer" ? 1 : "any",
      min: schema.minimum, max: schema.maximum, value: schema.default });
    read = () => (control.value === "" ? undefined : Number(control.value));
  } else if (schema.type === "string") {
    control = h("input", { ...common, type: "text", value: schema.default, maxlength: schema.maxLength, pattern: schema.pattern, size: 40 });
    read = () => (control.value === "" ? undefined : control.value);
  } else {
    control = h("textarea", { ...common, rows: 3, cols: 50, placeholder: "JSON" },
      schema.default === undefined ? "" : JSON.stringify(schema.default));
    read = () => (control.value.trim() === "" ? undefined : JSON.parse(control.value));
  }
  const label = h("label", { for: id }, schema.title || name, required ? " *" : "", description);
  return { element: [label, control], read: () => {
    try { return read(); } catch { throw new Error(`${schema.title || name}: not valid JSON`); }
  } };
}

/** {element, read()}: the fields, and the input object they hold (throws on bad JSON). */
export function inputFields(inputSchema) {
  const properties = inputSchema?.properties;
  if (!properties || !Object.keys(properties).length) {
    const area = h("textarea", { id: "input-json", rows: 4, cols: 60, placeholder: "{}" });
    return {
      element: [h("label", { for: "input-json" }, "Input ", h("span", { class: "hint" }, "(JSON, optional)")), area],
      read: () => {
        if (!area.value.trim()) return {};
        try { return JSON.parse(area.value); } catch { throw new Error("Input: not valid JSON"); }
      },
    };
  }
  const required = new Set(inputSchema.required || []);
  const fields = Object.entries(properties).map(([name, schema]) => [name, fieldFor(name, schema || {}, required.has(name))]);
  return {
    element: fields.map(([, field]) => field.element),
    read: () => Object.fromEntries(fields.map(([name, field]) => [name, field.read()]).filter(([, value]) => value !== undefined)),
  };
}
