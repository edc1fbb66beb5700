/**
 * `npm run docs`: rewrites the parts of docs/ that are made from code (the settings tables of
 * docs/configuration.md). test/unit/config.test.ts fails when they differ from the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from '../helpers/paths.ts';
import { settingsDoc } from '../../src/settings.ts';

export const CONFIGURATION_DOC = path.join(REPO, 'docs', 'configuration.md');
const BEGIN = '<!-- settings:begin -->';
const END = '<!-- settings:end -->';

/** The document with its generated block replaced by what the code says now. */
export function renderConfigurationDoc(current: string): string {
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${CONFIGURATION_DOC}: the markers ${BEGIN} and ${END} are missing`);
  return `${current.slice(0, start + BEGIN.length)}\n${settingsDoc()}\n${current.slice(end)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const current = fs.readFileSync(CONFIGURATION_DOC, 'utf8');
  const next = renderConfigurationDoc(current);
  fs.writeFileSync(CONFIGURATION_DOC, next);
  console.log(next === current ? 'docs/configuration.md is up to date' : 'docs/configuration.md rewritten');
}
