// The SQL editor: CodeMirror 6 with SQL highlighting, completion of layers, tables,
// columns and functions from the schema the caller may read (GET /query/schema), errors
// marked where the server says they are, Ctrl+Enter to run the selection (or all).

import {
  acceptCompletion,
  autocompletion,
  closeCompletion,
  startCompletion,
} from "@codemirror/autocomplete";
import { PostgreSQL, sql } from "@codemirror/lang-sql";
import { setDiagnostics } from "@codemirror/lint";
import { Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { EditorView, basicSetup } from "codemirror";
import { formatSql } from "./sql-format.js";

// The schema as lang-sql's namespace ({layer: {table: [columns]}}) and per table its
// columns with their types, for completion of bare column names.
function namespaces(schema) {
  const nested = {};
  const columns = new Map();
  for (const t of schema.tables) {
    const [layer, ...rest] = t.name.split(".");
    const table = rest.join(".");
    nested[layer] = nested[layer] || {};
    nested[layer][table] = t.columns.map((c) => ({
      label: c.name,
      type: "property",
      detail: c.masked ? `${c.type} · masked` : c.type,
    }));
    columns.set(t.name, t.columns);
  }
  return { nested, columns };
}

const TABLE_REF = /\b(bronze|silver|gold|system|realtime)\.([A-Za-z_][A-Za-z0-9_]*)/g;

// Columns of the tables the statement names, and the functions it may call, for a word
// typed without a qualifier.
function bareSource(columns, functions) {
  const fnOptions = functions.map((f) => ({ label: f, type: "function", apply: `${f}(` }));
  return (context) => {
    const word = context.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
    if (!word && !context.explicit) return null;
    const before = context.state.sliceDoc(Math.max(0, (word ? word.from : context.pos) - 1), word ? word.from : context.pos);
    if (before === ".") return null; // qualified: lang-sql's schema completion answers
    const text = context.state.doc.toString();
    const seen = new Set();
    const options = [];
    for (const m of text.matchAll(TABLE_REF)) {
      const cols = columns.get(`${m[1]}.${m[2]}`);
      if (!cols || seen.has(`${m[1]}.${m[2]}`)) continue;
      seen.add(`${m[1]}.${m[2]}`);
      for (const c of cols)
        options.push({
          label: c.name,
          type: "property",
          detail: `${c.type}${c.masked ? " · masked" : ""} · ${m[2]}`,
          boost: 2,
        });
    }
    return {
      from: word ? word.from : context.pos,
      options: [...options, ...fnOptions],
      validFor: /^[A-Za-z0-9_]*$/,
    };
  };
}

export function createEditor(parent, { doc, schema, onRun, onChange }) {
  const { nested, columns } = namespaces(schema || { tables: [], functions: [] });
  const language = sql({ dialect: PostgreSQL, schema: nested, upperCaseKeywords: true });
  const view = new EditorView({
    parent,
    doc: doc || "",
    extensions: [
      basicSetup,
      autocompletion({ activateOnTypingDelay: 10 }), // suggestions as soon as a key is typed
      language,
      language.language.data.of({
        autocomplete: bareSource(columns, (schema && schema.functions) || []),
      }),
      Prec.highest(
        keymap.of([
          {
            key: "Mod-Enter",
            run: (v) => {
              closeCompletion(v);
              onRun();
              return true;
            },
          },
          { key: "Shift-Alt-f", run: (v) => (formatAll(v), true) },
          { key: "Tab", run: acceptCompletion },
          { key: "Ctrl-Space", run: startCompletion },
        ]),
      ),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) {
          view.dispatch(setDiagnostics(update.state, []));
          if (onChange) onChange(update.state.doc.toString());
        }
      }),
      EditorView.contentAttributes.of({ id: "sql-editor", "aria-label": "SQL query" }),
    ],
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    // The selected text, or the whole statement when nothing is selected; with the
    // offset of its start (errors are marked relative to it).
    runnable() {
      closeCompletion(view);
      const sel = view.state.selection.main;
      if (!sel.empty)
        return { sql: view.state.sliceDoc(sel.from, sel.to), from: sel.from };
      return { sql: view.state.doc.toString(), from: 0 };
    },
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    insert(text) {
      view.dispatch(view.state.replaceSelection(text));
      view.focus();
    },
    // An error at a line and column (1-based) of the text that ran from `from`.
    markError(message, position, from = 0) {
      const doc = view.state.doc;
      let start = from;
      let end = Math.min(doc.length, from + 1);
      if (position) {
        const base = doc.lineAt(from);
        const lineNo = Math.min(doc.lines, base.number + position.line - 1);
        const line = doc.line(lineNo);
        const offset = lineNo === base.number ? from - line.from : 0;
        start = Math.min(line.to, line.from + offset + position.column - 1);
        const word = doc.sliceString(start, line.to).match(/^[\w"]+|^\S/);
        end = Math.min(line.to, start + (word ? word[0].length : 1));
        if (end <= start) end = Math.min(doc.length, start + 1);
      }
      view.dispatch(setDiagnostics(view.state, [{ from: start, to: end, severity: "error", message }]));
    },
    format: () => formatAll(view),
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}

function formatAll(view) {
  const text = view.state.doc.toString();
  const formatted = formatSql(text);
  if (formatted !== text)
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: formatted } });
}
