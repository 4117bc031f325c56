// Loads the notary-server admin console in real headless Chromium, with JavaScript disabled
// (the console must work without it), and checks what a person would see: the GUN list, a
// link followed to a GUN page, the search form submitted, the expiring dashboard and its
// form, the changefeed, the nav bar's "open a GUN" form, a 404, and that a browser without
// the client certificate gets no page at all. Full-page PNG screenshots go to `out`.
//
// Usage: node check-console.mjs '<json>'   with the JSON object:
//   base      https://127.0.0.1:PORT of the admin listener
//   cert,key  the admin client certificate and key (PEM files)
//   out       directory for the screenshots
//   guns      GUNs that must be listed
//   follow    the GUN whose link is followed; delegation, delegationPath: a delegation it has
//   search    a prefix; searchHits: the GUNs it must find (and only those among `guns`)
//   expired   a GUN with an expired entry (shown red on the dashboard)
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
// Prints one "ok - ..." line per check and "screenshot: PATH" per picture; exits 1 on the
// first failed check.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const cfg = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['base', 'cert', 'key', 'out', 'guns', 'follow', 'delegation', 'delegationPath', 'search', 'searchHits', 'expired']) {
  if (cfg[k] === undefined) {
    console.error(`missing "${k}" in the config argument`);
    process.exit(2);
  }
}
const console_ = `${cfg.base}/_notary_server/admin/console/`;
mkdirSync(cfg.out, { recursive: true });

function check(cond, what, detail = '') {
  if (!cond) {
    throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  }
  console.log(`ok - ${what}`);
}

async function shot(page, name) {
  const path = join(cfg.out, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

/** GUN link texts in the main content's tables. */
async function listedGuns(page) {
  return page.locator('main table a[href*="/console/gun/"]').allTextContents();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  console.log(`browser: Chromium ${browser.version()}`);
  const common = { ignoreHTTPSErrors: true, javaScriptEnabled: false, viewport: { width: 1280, height: 800 } };

  const context = await browser.newContext({
    ...common,
    clientCertificates: [{ origin: cfg.base, certPath: cfg.cert, keyPath: cfg.key }],
  });
  const page = await context.newPage();

  // The GUN list.
  let r = await page.goto(console_);
  check(r.status() === 200, 'GUN list answers 200', `${r.status()}`);
  const headers = r.headers();
  check(headers['content-type'] === 'text/html; charset=utf-8', 'HTML content type', headers['content-type']);
  check(headers['cache-control'] === 'no-store', 'Cache-Control: no-store', headers['cache-control']);
  let listed = await listedGuns(page);
  for (const g of cfg.guns) {
    check(listed.includes(g), `GUN list shows ${g}`, listed.join(', '));
  }
  const soonest = await page.locator('table.guns td.soon, table.guns td.ok, table.guns td.expired').count();
  check(soonest >= cfg.guns.length, 'each GUN has a coloured soonest expiry', `${soonest} cells`);
  check(await page.locator('table.guns td.expired').count() >= 1, 'an expired GUN is shown red');
  check((await page.locator('table.guns').innerText()).match(/\d+ days? left/) !== null, 'days left are shown');
  await shot(page, 'console-guns');

  check(!(await r.text()).includes('<script'), 'the page has no script');

  // Follow one GUN's link (the one with a delegation).
  await Promise.all([page.waitForURL(/\/console\/gun\//), page.getByRole('link', { name: cfg.follow, exact: true }).first().click()]);
  const h1 = await page.locator('h1').innerText();
  check(h1.includes(cfg.follow), `the link leads to the GUN page of ${cfg.follow}`, h1);
  const roles = await page.locator('table.roles tbody tr td:first-child').allInnerTexts();
  for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
    check(roles.some((t) => t.split('\n')[0] === role), `GUN page lists role ${role}`, roles.join(' | '));
  }
  const expiries = await page.locator('table.expiries').innerText();
  check(expiries.includes('certificate') && expiries.includes('CN='), 'GUN page shows the root certificate expiry', expiries);
  check(/notary-migrate rescue/.test(expiries) && /notary witness/.test(expiries), 'GUN page gives the repair commands');
  const delegations = await page.locator('table.delegations').innerText();
  check(delegations.includes(cfg.delegation) && delegations.includes(cfg.delegationPath),
    `GUN page shows delegation ${cfg.delegation} with path ${cfg.delegationPath}`, delegations);
  const keys = await page.locator('table.keys tbody').innerText();
  check(/timestamp/.test(keys), 'GUN page lists the server-held timestamp key', keys);
  check((await page.locator('table.changes tbody tr').count()) >= 1, 'GUN page lists last changes');
  await shot(page, 'console-gun');

  // The search box, submitted as a plain form.
  await page.goto(console_);
  await page.fill('#q', cfg.search);
  await Promise.all([page.waitForURL(/\?q=/), page.click('form[role=search] button[type=submit]')]);
  listed = await listedGuns(page);
  for (const g of cfg.guns) {
    const want = cfg.searchHits.includes(g);
    check(listed.includes(g) === want, `search "${cfg.search}" ${want ? 'finds' : 'leaves out'} ${g}`, listed.join(', '));
  }
  check((await page.inputValue('#q')) === cfg.search, 'the search box keeps the text');
  await shot(page, 'console-search');

  // The expiring dashboard through the nav bar; its form widens the window.
  await Promise.all([page.waitForURL(/\/console\/expiring/), page.getByRole('link', { name: 'Expiring soon', exact: true }).click()]);
  check((await page.locator('h1').innerText()).includes('Expiring within 30 days'), 'dashboard defaults to 30 days');
  let dash = await page.locator('table.expiries').innerText();
  check(dash.includes(cfg.expired) && /expired/.test(dash), `dashboard shows the expired entry of ${cfg.expired}`);
  check((await page.locator('table.expiries td.expired').count()) >= 1, 'expired entries are red');
  check((await page.locator('table.expiries td.soon').count()) >= 1, 'entries under 30 days are amber');
  await page.fill('#within', '4000');
  await Promise.all([page.waitForURL(/within=4000/), page.click('main form button[type=submit]')]);
  dash = await page.locator('table.expiries').innerText();
  check((await page.locator('h1').innerText()).includes('4000'), 'the form changes the window');
  check(dash.includes('certificate') && (await page.locator('table.expiries td.ok').count()) >= 1, 'a wide window adds the certificates, green');
  await shot(page, 'console-expiring');

  // The changefeed, newest first, linking GUN pages.
  await Promise.all([page.waitForURL(/\/console\/changes/), page.getByRole('link', { name: 'Changes', exact: true }).click()]);
  const ids = (await page.locator('table.changes tbody tr td:first-child').allInnerTexts()).map(Number);
  check(ids.length >= cfg.guns.length, 'changefeed lists the publishes', `${ids.length} rows`);
  check(ids.every((id, i) => i === 0 || ids[i - 1] > id), 'changefeed runs newest first', ids.join(','));
  listed = await listedGuns(page);
  for (const g of cfg.guns) {
    check(listed.includes(g), `changefeed names ${g}`);
  }
  await shot(page, 'console-changes');

  // The nav bar's form opens a GUN page by name (a redirect, no script).
  await page.fill('#open-gun', cfg.guns[1]);
  await Promise.all([page.waitForURL(/\/console\/gun\//), page.click('header form button[type=submit]')]);
  check((await page.locator('h1').innerText()).includes(cfg.guns[1]), 'the nav form opens a GUN page');

  r = await page.goto(`${console_}no-such-page`);
  check(r.status() === 404, 'an unknown console path is 404', `${r.status()}`);
  await context.close();

  // Without the client certificate the TLS handshake fails: no HTTP answer, no page.
  const anonymous = await browser.newContext(common);
  let refused = null;
  try {
    const r = await (await anonymous.newPage()).goto(console_, { timeout: 20000 });
    refused = `got HTTP ${r?.status()}`;
  } catch (e) {
    refused = e.message.split('\n')[0];
  }
  // Checked after the pages loaded, so the listener is known to be up: no answer here is
  // the handshake's doing, not a refused connection.
  check(/net::ERR_/.test(refused) && !/ERR_CONNECTION_REFUSED/.test(refused),
    `a browser without the client certificate gets no page (${refused})`);
  await anonymous.close();
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
