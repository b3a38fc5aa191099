// ryanuber/columnize as serf uses it: every column but the last padded to its widest cell
// (counted in code points), joined by two spaces, cells trimmed.

export function columnize(rows: string[][]): string {
  const widths: number[] = [];
  const cells = rows.map((r) => r.map((c) => c.trim()));
  for (const r of cells) {
    r.forEach((c, i) => {
      const w = [...c].length;
      if ((widths[i] ?? 0) < w) widths[i] = w;
    });
  }
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length)))
        .join('  '),
    )
    .join('\n');
}
