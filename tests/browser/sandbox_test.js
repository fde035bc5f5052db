// Browser test of the sandbox: starts the whole bridge with scripts/run.sh
// (on free ports, in its own run directory), opens the page in headless
// Chromium through playwright-core and checks, as a person would see it:
//   - a message typed in the Slack pane appears in the TeamSpirit,
//     Telegram and Bitrix24 panes under the bridge-rendered name;
//   - a message typed in the Bitrix24 pane (BB-code) appears in the Slack
//     pane;
//   - a reply (TeamSpirit) and an edit (Slack) are mirrored;
//   - a file attached in the Telegram pane arrives in the other two, and its
//     download link serves the same bytes;
//   - a website visitor (the emulated Chatlio widget) talks to a TeamSpirit
//     agent: the widget goes online when the agent is, the visitor's
//     message shows in TeamSpirit as Chatlio's notice, the next one in the
//     notice's thread, and the agent's reply in that thread reaches the
//     widget without Slack's markup;
//   - a TeamSpirit person's presence change shows in `!bridge who`;
//   - a delete (Slack) removes the copies;
//   - `!bridge botsplash start` in TeamSpirit starts a customer conversation
//     in a thread; the agent's message reaches the customer's phone pane,
//     and the customer's reply comes back into the thread;
//   - Ctrl-C (SIGINT) stops everything and run.sh exits 0.
// Saves screenshot.png (and failure.png on failure) in IMBRIDGE_ARTIFACT_DIR;
// with IMBRIDGE_DOCS_SCREENSHOT=1 also copies it to docs/images/sandbox.png.
//
// Run by tests/browser/run_browser_test.sh, which installs playwright-core.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { chromium } = require('playwright-core');

const source = process.env.IMBRIDGE_SOURCE_DIR || path.resolve(__dirname, '../..');
const build = process.env.IMBRIDGE_BUILD_DIR || path.join(source, 'build');
const artifacts = process.env.IMBRIDGE_ARTIFACT_DIR || path.join(build, 'tests/browser');
const chromiumPath = process.env.IMBRIDGE_CHROMIUM || '/usr/bin/chromium';
// Generous: the machine may be slow and shared.
const WAIT = 90 * 1000;

function log(...args) {
  console.log(`[browser-test ${new Date().toISOString().slice(11, 19)}]`, ...args);
}

// The lowest port the kernel hands out for port 0 and for outgoing
// connections (Linux's ip_local_port_range).
function ephemeralLow() {
  try {
    const range = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = parseInt(range.trim().split(/\s+/)[0], 10);
    if (low > 2048) return low;
  } catch (e) { /* not Linux: the usual default */ }
  return 32768;
}

// A port that is free now, below the ephemeral range: run.sh binds the ports
// seconds after they are picked, and a port from the ephemeral range (what
// listen(0) gives) can be taken meanwhile as the local end of any outgoing
// connection on the machine (it was, once, when other tests ran beside this
// one: "Address already in use").
function freePort(taken) {
  const low = 10000;
  const high = ephemeralLow();
  return new Promise((resolve, reject) => {
    const attempt = (tries) => {
      const port = low + Math.floor(Math.random() * (high - low));
      if (taken.has(port)) { attempt(tries); return; }
      const server = net.createServer();
      server.on('error', (e) => {
        if (tries > 0) attempt(tries - 1); else reject(e);
      });
      server.listen(port, '127.0.0.1', () => {
        server.close(() => { taken.add(port); resolve(port); });
      });
    };
    attempt(50);
  });
}

// Starts scripts/run.sh; resolves with {child, pageUrl, output()} once it
// printed the page's address.
async function startStack() {
  const ports = {};
  const taken = new Set();
  for (const name of ['ROUTER', 'ROUTER_HTTP', 'TEAMSPIRIT', 'SLACK', 'TELEGRAM', 'WEBHOOK',
    'BITRIX24', 'CHATLIO', 'BOTSPLASH', 'SANDBOX']) {
    ports[`IMBRIDGE_${name}_PORT`] = String(await freePort(taken));
  }
  const runDir = path.join(artifacts, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  const logPath = path.join(artifacts, 'stack.log');
  const logFile = fs.createWriteStream(logPath);
  const child = spawn('bash', [path.join(source, 'scripts/run.sh')], {
    env: {
      ...process.env,
      ...ports,
      IMBRIDGE_SKIP_BUILD: '1',
      IMBRIDGE_BUILD_DIR: build,
      IMBRIDGE_RUN_DIR: runDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const output = () => text;
  let exited = null;
  const onData = (chunk) => { text += chunk; logFile.write(chunk); };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const deadline = Date.now() + 240 * 1000;
  while (Date.now() < deadline) {
    const match = /Open the sandbox page:\s+(\S+)/.exec(text);
    if (match) return { child, pageUrl: match[1], output, exited: () => exited, logPath };
    if (exited) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`run.sh did not start the stack (exit ${JSON.stringify(exited)}); ` +
    `log ${logPath}:\n${text.slice(-4000)}`);
}

async function stopStack(stack) {
  if (stack.exited()) return stack.exited();
  stack.child.kill('SIGINT');
  const deadline = Date.now() + 120 * 1000;
  while (!stack.exited() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!stack.exited()) {
    stack.child.kill('SIGKILL');
    throw new Error('run.sh did not stop within 120 s of SIGINT');
  }
  return stack.exited();
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  log('starting the stack with scripts/run.sh');
  const stack = await startStack();
  log(`page at ${stack.pageUrl}`);
  let browser = null;
  let page = null;
  try {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1560, height: 940 } });
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => log('page error:', e.message));
    await page.goto(stack.pageUrl);
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector('#live.ok');

    const pane = (name) => page.locator(`#pane-${name}`);
    const message = (name, text) => pane(name).locator('.msg', { hasText: text });
    const post = async (name, user, text) => {
      await pane(name).locator('.as-user').selectOption({ label: user });
      await pane(name).locator('.composer-text').fill(text);
      await pane(name).locator('.composer-text').press('Enter');
      await pane(name).locator('.composer-text').and(page.locator(':placeholder-shown'))
        .waitFor();
    };
    const hoverAction = async (name, text, act) => {
      const m = message(name, text).first();
      await m.hover();
      await m.locator(`button[data-act="${act}"]`).click();
    };

    // 1. Slack -> TeamSpirit and Telegram.
    log('Ann posts in Slack');
    await post('slack', 'Ann Lee', 'Hello from *Slack*');
    const tsCopy = message('teamspirit', 'Hello from Slack').first();
    await tsCopy.waitFor();
    check((await tsCopy.locator('.name').textContent()) === 'Ann Lee (slack)',
      'the TeamSpirit copy is shown under "Ann Lee (slack)"');
    check((await tsCopy.locator('.text b').textContent()) === 'Slack',
      'the TeamSpirit copy keeps the bold word');
    const tgCopy = message('telegram', 'Hello from Slack').first();
    await tgCopy.waitFor();
    check((await tgCopy.locator('.text b').first().textContent()).includes('Ann Lee (slack)'),
      'the Telegram copy starts with the bold sender name');
    const b24Copy = message('bitrix24', 'Hello from Slack').first();
    await b24Copy.waitFor();
    check((await b24Copy.locator('.text b').first().textContent()) === 'Ann Lee (slack)',
      'the Bitrix24 copy starts with the bold sender name');
    check((await b24Copy.locator('.text b').nth(1).textContent()) === 'Slack',
      'the Bitrix24 copy keeps the bold word');

    // 1b. Bitrix24 (BB-code) -> Slack.
    log('Elena posts in Bitrix24');
    await post('bitrix24', 'Elena Petrova', 'Hi from [b]Bitrix24[/b]');
    const fromB24 = message('slack', 'Hi from').first();
    await fromB24.waitFor();
    check((await fromB24.locator('.name').textContent()) === 'Elena Petrova (bitrix24)',
      'the Slack copy is shown under "Elena Petrova (bitrix24)"');
    check((await fromB24.locator('.text b').textContent()) === 'Bitrix24',
      'the Slack copy keeps the bold word');

    // 2. A reply from TeamSpirit reaches Slack (in the thread) and Telegram.
    log('Yuki replies in TeamSpirit');
    await hoverAction('teamspirit', 'Hello from Slack', 'reply');
    await pane('teamspirit').locator('.composer-mode').waitFor();
    await post('teamspirit', 'Yuki Tanaka', 'Welcome, Ann!');
    const slackReply = message('slack', 'Welcome, Ann!').first();
    await slackReply.waitFor();
    check((await slackReply.locator('.name').textContent()) === 'Yuki Tanaka (teamspirit)',
      'the Slack copy of the reply is shown under "Yuki Tanaka (teamspirit)"');
    check(await slackReply.evaluate((n) => n.classList.contains('is-reply')),
      'the Slack copy of the reply is in the thread of the original');
    const tgReply = message('telegram', 'Welcome, Ann!').first();
    await tgReply.waitFor();
    check((await tgReply.locator('.reply-quote').textContent()).includes('Hello from Slack'),
      'the Telegram copy of the reply quotes the original');

    // 3. Ann edits her message in Slack; both copies follow.
    log('Ann edits her message in Slack');
    await hoverAction('slack', 'Hello from Slack', 'edit');
    await pane('slack').locator('.composer-text').fill('Hello from Slack, edited');
    await pane('slack').locator('.composer-text').press('Enter');
    await message('teamspirit', 'Hello from Slack, edited').locator('.edited').first().waitFor();
    await message('telegram', 'Hello from Slack, edited').first().waitFor();

    // 4. Carla attaches a file in Telegram; it arrives in both other panes.
    log('Carla uploads a file in Telegram');
    const content = `quarterly notes ${Date.now()}\nline two\n`;
    await pane('telegram').locator('.as-user').selectOption({ label: 'Carla Diaz' });
    await pane('telegram').locator('.composer-text').fill('the notes');
    await pane('telegram').locator('.file-input').setInputFiles({
      name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(content),
    });
    for (const name of ['slack', 'teamspirit']) {
      const file = pane(name).locator('.msg .file', { hasText: 'notes.txt' }).first();
      await file.waitFor();
      const href = await file.getAttribute('href');
      const response = await page.request.get(new URL(href, stack.pageUrl).toString());
      check(response.ok(), `the ${name} download link answers 200`);
      check((await response.text()) === content, `the ${name} copy of the file has the same bytes`);
    }

    // 5. A website visitor talks to Yuki through the Chatlio widget.
    log('Yuki comes online; the website chat follows');
    await pane('teamspirit').locator('.person[data-user="u-yuki"] .presence-select')
      .selectOption('online');
    await page.locator('#visitor-status.on').waitFor();
    log('the visitor asks a question');
    await page.locator('#visitor-text').fill('Do you ship to Canada?');
    await page.locator('#visitor-text').press('Enter');
    await page.locator('.visitor-line.from-visitor', { hasText: 'Do you ship to Canada?' })
      .waitFor();
    await message('teamspirit', 'New website conversation').first().waitFor();
    check(await message('teamspirit', 'Do you ship to Canada?').count() > 0,
      "the TeamSpirit notice carries the visitor's first message");
    // The visitor's channel is linked with the notice's thread (the Chatlio
    // adapter logs it; the router narrows the link to the thread once the
    // notice's copy is in TeamSpirit); the visitor's next message shows
    // there.
    const linkDeadline = Date.now() + WAIT;
    while (!stack.output().includes('Chatlio visitor linked')) {
      check(Date.now() < linkDeadline, "the visitor's channel is linked");
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.locator('#visitor-text').fill('To Toronto, please.');
    await page.locator('#visitor-text').press('Enter');
    await message('teamspirit', 'To Toronto, please.').first().waitFor();
    log("Yuki answers in TeamSpirit, in the notice's thread");
    await hoverAction('teamspirit', 'New website conversation', 'reply');
    await pane('teamspirit').locator('.composer-mode').waitFor();
    await post('teamspirit', 'Yuki Tanaka', 'Yes, we ship to Canada.');
    const agentLine = page.locator('.visitor-line.from-agent', { hasText: 'Yes, we ship to Canada.' });
    await agentLine.waitFor();
    check(!(await agentLine.textContent()).includes('*'),
      'the visitor sees the answer without Slack markup');

    // 6. Yuki goes away on TeamSpirit; `!bridge who` in Slack says so.
    log("Yuki's presence changes to away");
    await pane('teamspirit').locator('.person[data-user="u-yuki"] .presence-select')
      .selectOption('away');
    await pane('teamspirit')
      .locator('.person[data-user="u-yuki"] .presence-away').waitFor();
    let answer = '';
    const deadline = Date.now() + WAIT;
    for (let attempt = 1; Date.now() < deadline; attempt++) {
      const before = await pane('slack').locator('.msg.bridged', { hasText: 'People on the other side' }).count();
      await post('slack', 'Ann Lee', '!bridge who');
      const answers = pane('slack').locator('.msg.bridged', { hasText: 'People on the other side' });
      await answers.nth(before).waitFor();
      answer = await answers.nth(before).locator('.text').textContent();
      if (answer.includes('Yuki Tanaka (teamspirit): away')) break;
      log(`!bridge who #${attempt} does not show Yuki away yet: ${JSON.stringify(answer)}`);
      await page.waitForTimeout(2000);
    }
    check(answer.includes('Yuki Tanaka (teamspirit): away'),
      `!bridge who lists Yuki as away (last answer ${JSON.stringify(answer)})`);
    check(await message('teamspirit', '!bridge who').count() === 0,
      'the command is not mirrored to TeamSpirit');

    await page.screenshot({ path: path.join(artifacts, 'screenshot.png') });
    log(`screenshot saved: ${path.join(artifacts, 'screenshot.png')}`);
    if (process.env.IMBRIDGE_DOCS_SCREENSHOT === '1') {
      fs.copyFileSync(path.join(artifacts, 'screenshot.png'),
        path.join(source, 'docs/images/sandbox.png'));
      log('copied to docs/images/sandbox.png');
    }

    // 7. Ann deletes her message in Slack; the copies go too.
    log('Ann deletes her message in Slack');
    await hoverAction('slack', 'Hello from Slack, edited', 'delete');
    for (const name of ['teamspirit', 'telegram']) {
      await pane(name).locator('.msg.deleted').first().waitFor();
      check(await message(name, 'Hello from Slack, edited').count() === 0,
        `the ${name} copy is deleted`);
    }

    // 7. A customer conversation from TeamSpirit (Botsplash).
    log('Kenji starts a customer conversation from TeamSpirit');
    await post('teamspirit', 'Kenji Sato', '!bridge botsplash start +15551234567 Ann Lee');
    const started = message('teamspirit', 'Texting Ann Lee').first();
    await started.waitFor();
    await pane('botsplash').locator('.as-user option', { hasText: 'Ann Lee' }).waitFor({ state: 'attached' });
    await hoverAction('teamspirit', 'Texting Ann Lee', 'reply');
    await pane('teamspirit').locator('.composer-mode').waitFor();
    await post('teamspirit', 'Kenji Sato', 'Hi Ann, your parcel ships today');
    const sms = message('botsplash', 'Hi Ann, your parcel ships today').first();
    await sms.waitFor();
    check((await sms.locator('.name').textContent()).includes('Ann Lee'),
      'the customer pane shows the text sent to Ann Lee');
    log('Ann answers from her phone');
    await post('botsplash', 'Ann Lee', 'Great, thank you!');
    const back = message('teamspirit', 'Great, thank you!').first();
    await back.waitFor();
    check((await back.locator('.name').textContent()).includes('Ann Lee'),
      'the reply is shown in TeamSpirit under the customer\'s name');
    check(await message('slack', 'Great, thank you!').count() === 0,
      'the customer conversation stays in its TeamSpirit thread');
  } catch (err) {
    if (page) {
      await page.screenshot({ path: path.join(artifacts, 'failure.png') }).catch(() => {});
    }
    log(`FAILED: ${err.stack || err}`);
    log(`stack log (${stack.logPath}), last lines:\n${stack.output().slice(-6000)}`);
    if (browser) await browser.close().catch(() => {});
    await stopStack(stack).catch(() => {});
    process.exit(1);
  }
  await browser.close();

  // 8. Ctrl-C stops everything cleanly.
  log('stopping the stack with SIGINT');
  const exit = await stopStack(stack);
  check(exit.code === 0, `run.sh exits 0 on SIGINT (got ${JSON.stringify(exit)})`);
  check(stack.output().includes('[run] stopped'), 'run.sh reports that it stopped');
  log('PASSED');
}

main().catch((err) => {
  log(`FAILED: ${err.stack || err}`);
  process.exit(1);
});
