// Headless Chromium for the report tests: the Debian package (.ci/run installs it), driven by
// playwright-core, with a fresh profile and nothing that would reach the network.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const chromiumPath = '/usr/bin/chromium';

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install the Debian package \`chromium\` (.ci/run does).`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a written report and waits until it has drawn; `problems` has its console errors and page errors. */
export async function openReport(context: BrowserContext, file: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (err) => problems.push(err.message));
  await page.goto(`file://${file}`);
  await page.waitForFunction(() => (globalThis as unknown as { rehearseReady?: boolean }).rehearseReady === true, null, { timeout: 15_000 });
  return { page, problems };
}

export type { Browser };
