import type { Candidate } from './api.js';
import { html } from './html.js';
import { bits, waterfallSteps } from './weights.js';

/**
 * A candidate's match-weight waterfall as an SVG: green steps raise the weight, red ones lower it, the last bar
 * is the total. It has a text description for screen readers; the agreement table beside it carries the same
 * numbers.
 */
export function Waterfall({ candidate, index }: { candidate: Candidate; index: number }) {
  const steps = waterfallSteps(candidate);
  const values = steps.flatMap((s) => [s.from, s.to]);
  const min = Math.min(0, ...values);
  const max = Math.max(0, ...values);
  const width = 560;
  const labelWidth = 190;
  const valueWidth = 60;
  const row = 22;
  const top = 8;
  const height = top + steps.length * row + 20;
  const x = (v: number) => labelWidth + ((v - min) / (max - min || 1)) * (width - labelWidth - valueWidth);
  const titleId = `waterfall-title-${index}`;
  const descId = `waterfall-desc-${index}`;
  const description = steps.map((s) => `${s.label} ${s.kind === 'prior' || s.kind === 'total' ? s.to.toFixed(1) : bits(s.to - s.from)} bits`).join('; ');
  return html`
    <figure class="waterfall">
      <svg viewBox=${`0 0 ${width} ${height}`} role="img" aria-labelledby=${`${titleId} ${descId}`} preserveAspectRatio="xMinYMin meet">
        <title id=${titleId}>Match-weight waterfall, candidate ${index + 1}</title>
        <desc id=${descId}>${description}</desc>
        <line x1=${x(0)} x2=${x(0)} y1=${top - 4} y2=${height - 16} class="axis" />
        ${steps.map((s, i) => {
          const y = top + i * row;
          const left = x(Math.min(s.from, s.to));
          const barWidth = Math.max(1.5, Math.abs(x(s.to) - x(s.from)));
          const change = s.kind === 'prior' || s.kind === 'total' ? s.to : s.to - s.from;
          return html`
            <g class=${`step ${s.kind}`}>
              <text x=${labelWidth - 8} y=${y + 15} text-anchor="end" class="label">${s.label}</text>
              <rect x=${left} y=${y + 3} width=${barWidth} height=${row - 6} rx="2" />
              <text x=${width - 4} y=${y + 15} text-anchor="end" class="value">${s.kind === 'prior' || s.kind === 'total' ? change.toFixed(1) : bits(change)}</text>
            </g>`;
        })}
        <text x=${x(0)} y=${height - 4} text-anchor="middle" class="tick">0 bits</text>
      </svg>
      <figcaption>Each step adds a field's weight (log₂ m/u, in bits) to the prior; the last bar is the total.</figcaption>
    </figure>`;
}
