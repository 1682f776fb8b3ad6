// A table's history tab: its versions, what wrote each and what it changed.

import { api } from "../lib/api.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { fmtInt, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { current } from "../lib/nav.js";

export async function tabHistory(panel, info, token) {
  put(panel, spinner());
  const data = await api(`/tables/${encodeURIComponent(info.name)}/history`);
  if (!current(token)) return;
  const metric = (v, ...keys) => {
    for (const k of keys) if (v.metrics && v.metrics[k] !== undefined) return v.metrics[k];
    return null;
  };
  put(
    clear(panel),
    recordTable(
      data.versions,
      [
        { key: "version", label: "Version", num: true },
        { label: "Time", render: (v) => fmtTime(v.timestamp) },
        { label: "Operation", render: (v) => h("span", { class: "mono" }, v.operation || "") },
        {
          label: "Parameters",
          render: (v) =>
            h(
              "span",
              { class: "small mono" },
              Object.entries(v.parameters || {})
                .map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`)
                .join(" "),
            ),
        },
        {
          label: "Rows added",
          num: true,
          render: (v) =>
            fmtInt(
              v.rows_added ??
                metric(v, "num_added_rows", "num_output_rows", "num_target_rows_inserted"),
            ),
        },
        {
          label: "Files +/−",
          num: true,
          render: (v) =>
            `${fmtInt(metric(v, "num_added_files") ?? 0)} / ${fmtInt(metric(v, "num_removed_files") ?? 0)}`,
        },
        { key: "user", label: "By" },
      ],
      { id: "history-table" },
    ),
  );
}
