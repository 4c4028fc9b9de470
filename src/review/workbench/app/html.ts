import htm from 'htm';
import { h } from 'preact';

/** Preact's h as tagged templates (htm): no JSX, so no compiler setting, and esbuild bundles it as plain TypeScript. */
export const html = htm.bind(h);
