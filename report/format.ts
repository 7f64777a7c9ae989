// Number and table formatting for the terminal output of runs and compare. Pure.

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (Math.abs(ms) >= 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (Math.abs(ms) >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (Math.abs(ms) >= 100) return `${Math.round(ms)}ms`;
  if (Math.abs(ms) >= 10) return `${ms.toFixed(1)}ms`;
  return `${ms.toFixed(2)}ms`;
}

export function formatPercent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(2);
}

/** Control characters from logs or options must not drive the terminal: shown as \xNN. */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Cells must already be terminalSafe (they may carry colour sequences). Left-aligned columns, right-aligned where `rightAligned` has the column index. */
export function formatTable(header: string[], rows: string[][], rightAligned = new Set<number>()): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => visibleLength(r[i] ?? ''))));
  return (
    all
      .map((r) =>
        r
          .map((cell, i) => {
            const pad = ' '.repeat(Math.max(0, widths[i]! - visibleLength(cell)));
            return rightAligned.has(i) ? pad + cell : cell + pad;
          })
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Length without ANSI colour sequences. */
export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}
