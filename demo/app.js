// The demo chat page: everything heavy runs in the engine worker (dist/browser/engineWorker.js).
import { QwenWorkerClient } from '../dist/browser/index.js';

const $ = (id) => document.getElementById(id);
const ui = {
  env: $('env'), url: $('model-url'), backend: $('backend'), greedy: $('greedy'), maxTokens: $('max-tokens'),
  load: $('load'), clear: $('clear-cache'), progress: $('progress'), status: $('status'), chat: $('chat'),
  query: $('query'), send: $('send'), stop: $('stop'), reset: $('reset'), error: $('error'),
};
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
let client;
let history = [];
let current; // the running ChatStream

function showError(e) {
  ui.error.textContent = e ? `${e.code ?? 'error'}: ${e.message ?? e}` : '';
}
function setBusy(chatting) {
  ui.send.disabled = chatting || !client?.loaded;
  ui.query.disabled = !client?.loaded;
  ui.stop.disabled = !chatting;
  ui.reset.disabled = chatting || !client?.loaded;
  ui.load.disabled = chatting;
}
function bubble(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  ui.chat.append(div);
  ui.chat.scrollTop = ui.chat.scrollHeight;
  return div;
}

async function start() {
  try {
    client = await QwenWorkerClient.create();
    const h = client.hello;
    ui.env.textContent = `crossOriginIsolated: ${h.crossOriginIsolated ? 'yes (wasm threads available)' : 'NO — wasm runs single-threaded (serve with COOP/COEP)'}` +
      ` · WebGPU adapter: ${h.webgpu ? `yes — ${h.adapter}${h.softwareAdapter ? ' (software: "auto" picks the CPU)' : ''}` : 'none'} · cores: ${h.hardwareConcurrency}`;
    document.body.dataset.ready = '1';
  } catch (e) {
    showError(e);
  }
}

ui.load.onclick = async () => {
  showError(null);
  ui.load.disabled = true;
  ui.progress.value = 0;
  const t0 = performance.now();
  try {
    const info = await client.load(ui.url.value.trim(), {
      backend: ui.backend.value,
      onProgress: (p) => {
        ui.progress.value = p.bytesTotal ? p.bytesDone / p.bytesTotal : 0;
        ui.status.textContent = p.phase === 'download'
          ? `downloading ${mb(p.bytesDone)} / ${mb(p.bytesTotal)} · files ${p.filesDone}/${p.filesTotal} · ${mb(p.bytesFetched)} from the network`
          : `loading weights ${mb(p.bytesDone)} / ${mb(p.bytesTotal)}`;
      },
    });
    ui.progress.value = 1;
    ui.status.textContent = `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${info.backend} — ${info.description}` +
      ` · ${info.bytesFetched ? `${mb(info.bytesFetched)} downloaded` : 'from the browser cache'}`;
    document.body.dataset.backend = info.backend;
    history = [];
    ui.chat.textContent = '';
  } catch (e) {
    ui.status.textContent = 'load failed';
    showError(e);
  } finally {
    setBusy(false);
  }
};

ui.clear.onclick = async () => {
  showError(null);
  try {
    await client.clearCache();
    ui.status.textContent = 'cache cleared';
  } catch (e) {
    showError(e);
  }
};

async function send() {
  const query = ui.query.value;
  if (!query.trim() || current) return;
  showError(null);
  ui.query.value = '';
  bubble('user', query);
  const out = bubble('assistant', '');
  const meta = document.createElement('div');
  meta.className = 'meta';
  setBusy(true);
  const t0 = performance.now();
  let first = 0;
  let n = 0;
  current = client.chatStream(query, {
    history,
    doSample: !ui.greedy.checked,
    maxNewTokens: Number(ui.maxTokens.value) || 48,
  }, (d) => {
    n += d.tokens.length;
    first ||= performance.now();
    const secs = (performance.now() - first) / 1000;
    if (secs > 0 && n > 1) meta.textContent = `${((n - 1) / secs).toFixed(1)} tok/s`;
  });
  try {
    for await (const text of current) {
      out.textContent += text;
      ui.chat.scrollTop = ui.chat.scrollHeight;
    }
    const r = await current.result;
    history = r.history;
    out.textContent = r.response;
    meta.textContent = `${r.tokens.length} tokens · ${r.tokensPerSecond.toFixed(1)} tok/s · first token ${(r.prefillMs / 1000).toFixed(2)} s` +
      (r.finishReason === 'abort' ? ' · stopped' : r.finishReason === 'length' ? ' · max tokens reached' : '');
    out.append(meta);
  } catch (e) {
    showError(e);
  } finally {
    current = undefined;
    document.body.dataset.turns = String(history.length);
    setBusy(false);
    void t0;
  }
}

ui.send.onclick = send;
ui.query.onkeydown = (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    send();
  }
};
ui.stop.onclick = () => current?.abort();
ui.reset.onclick = () => {
  history = [];
  ui.chat.textContent = '';
};

start();
