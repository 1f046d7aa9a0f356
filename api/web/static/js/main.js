// The page's composition root: sign in and out, the shared state, loading from the REST API, and applying
// the live event stream (task changes, membership changes, reminders, series occurrences) to what is shown.

import { Api, errorLines } from "./api.js";
import { createClock } from "./clock.js";
import { createItemsView } from "./items.js";
import { createListsView } from "./lists.js";
import { createMembersView } from "./members.js";
import { createSeriesView } from "./series.js";
import { claimsOf, clearToken, loadToken, normalizeToken, saveToken } from "./session.js";
import { EventStream } from "./stream.js";
import { formatDue, formatInstant } from "./times.js";
import { clearToasts, toast } from "./toasts.js";

const $ = (id) => document.getElementById(id);
const FIRST_CONNECT_WAIT_MS = 3000;
// A workflow's history changes without feed events (timers set, activities run): re-read the open
// series this often while the tab is visible.
const SERIES_POLL_MS = 5000;
const MAX_SEEN_EVENTS = 5000;

function freshState() {
  return {
    user: null,
    lists: [],
    listId: null,
    items: new Map(),
    deleted: new Set(),
    listVersion: 0,
    series: [],
    seriesId: null,
    seriesDetail: null,
    generations: new Map(),
    showGenerations: false,
    clock: null,
    seen: new Set(),
  };
}

let token = loadToken();
const ctx = {
  state: freshState(),
  api: new Api(() => token, (error) => {
    if (ctx.state.user) signOut(`You were signed out: ${error.detail || error.title}`);
  }),
};
const stream = new EventStream(ctx.api, {
  onEvent: handleEvent,
  onStatus: connectionChanged,
  onUnauthorized: (error) => signOut(`You were signed out: ${error.message}`),
});
const clock = createClock(ctx);
const listsView = createListsView(ctx);
const itemsView = createItemsView(ctx);
const seriesView = createSeriesView(ctx);
const membersView = createMembersView(ctx);
let firstConnect = null;
let seriesPoll = null;

/** Run `fn` at most once per `ms`, after the last call (coalesces bursts of events). */
function debounce(fn, ms) {
  const timers = new Map();
  return (key = "") => {
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      fn(key).catch(reportError);
    }, ms));
  };
}

function reportError(error) {
  if (error?.name === "AbortError" || !ctx.state.user) return;
  toast("Something went wrong", { kind: "error", body: errorLines(error) });
}

Object.assign(ctx, {
  now: () => clock.now(),

  async selectList(listId) {
    ctx.state.listId = listId;
    ctx.state.items = new Map();
    ctx.state.deleted = new Set();
    if (ctx.state.seriesDetail?.series.list_id !== listId) {
      ctx.state.seriesId = null;
      ctx.state.seriesDetail = null;
    }
    writeLocation();
    renderAll();
    await Promise.all([listId ? ctx.refreshItems() : null, membersView.refresh(), ctx.refreshSeries()]);
  },

  async selectSeries(seriesId) {
    const series = ctx.state.series.find((s) => s.id === seriesId);
    if (series && series.list_id !== ctx.state.listId) await ctx.selectList(series.list_id);
    ctx.state.seriesId = seriesId;
    writeLocation();
    await ctx.refreshSeriesDetail();
    document.getElementById("series-detail-heading")?.scrollIntoView({ block: "nearest" });
  },

  async refreshLists() {
    ctx.state.lists = await ctx.api.all("/v1/lists", { limit: 500 });
    if (ctx.state.listId && !ctx.state.lists.some((l) => l.id === ctx.state.listId)) {
      await ctx.selectList(ctx.state.lists[0]?.id ?? null);
    }
    renderAll();
  },

  async refreshItems() {
    const listId = ctx.state.listId;
    if (!listId) return;
    const items = new Map();
    let cursor;
    let version = 0;
    do {
      const { data } = await ctx.api.get(`/v1/lists/${listId}/items`, { query: { limit: 500, cursor } });
      for (const item of data.items) items.set(item.id, item);
      version = Math.max(version, data.list_version);
      cursor = data.next_cursor ?? undefined;
    } while (cursor);
    if (ctx.state.listId !== listId) return;
    // An event may have brought a newer snapshot while the pages were read.
    for (const [id, item] of items) {
      const known = ctx.state.items.get(id);
      if (known && known.version > item.version) items.set(id, known);
    }
    ctx.state.items = items;
    ctx.state.listVersion = version;
    await refreshListSummary(listId);
  },

  async refreshSeries() {
    // Ours, and the open list's (on a shared list, others made some of them).
    const listId = ctx.state.listId;
    const [mine, onList] = await Promise.all([
      ctx.api.all("/v1/series", { limit: 200 }),
      listId ? ctx.api.all("/v1/series", { limit: 200, list_id: listId }).catch(() => []) : [],
    ]);
    ctx.state.series = [...new Map([...mine, ...onList].map((s) => [s.id, s])).values()];
    seriesView.render();
  },

  async refreshSeriesDetail() {
    const seriesId = ctx.state.seriesId;
    if (!seriesId) {
      seriesView.render();
      return;
    }
    let series, occurrences, workflow, history;
    try {
      [series, occurrences, workflow, history] = await Promise.all([
        ctx.api.get(`/v1/series/${seriesId}`, { query: { upcoming: 8 } }).then((r) => r.data),
        ctx.api.all(`/v1/series/${seriesId}/occurrences`, { limit: 500 }),
        // A purged workflow has no instance or history; the series itself still shows.
        ctx.api.get(`/v1/workflows/series-${seriesId}`).then((r) => r.data, () => null),
        ctx.api.get(`/v1/workflows/series-${seriesId}/history`).then((r) => r.data, () => null),
      ]);
    } catch (error) {
      if (error?.status !== 404 || ctx.state.seriesId !== seriesId) throw error;
      ctx.state.seriesId = null; // gone (or never ours): close it
      ctx.state.seriesDetail = null;
      writeLocation();
      seriesView.render();
      return;
    }
    if (ctx.state.seriesId !== seriesId) return;
    if (!ctx.state.generations.has(seriesId)) ctx.state.generations.set(seriesId, new Map());
    const generations = ctx.state.generations.get(seriesId);
    if (history?.generation !== null && history?.generation !== undefined) {
      generations.set(history.generation, history.events);
    }
    ctx.updateSeries(series, false);
    ctx.state.seriesDetail = { series, occurrences, upcoming: series.upcoming, workflow, history, generations };
    seriesView.render();
  },

  updateList(summary) {
    const at = ctx.state.lists.findIndex((l) => l.id === summary.id);
    if (at === -1) ctx.state.lists.push(summary);
    else ctx.state.lists[at] = summary;
    if (summary.id === ctx.state.listId) ctx.state.listVersion = Math.max(ctx.state.listVersion, summary.version);
    listsView.render();
    itemsView.render();
  },

  updateSeries(series, render = true) {
    const at = ctx.state.series.findIndex((s) => s.id === series.id);
    if (at === -1) ctx.state.series.push(series);
    else ctx.state.series[at] = series;
    if (render) seriesView.render();
  },

  async onClockAdvanced() {
    itemsView.renderRows();
    await Promise.all([ctx.refreshSeries(), ctx.refreshSeriesDetail()]);
  },
});

async function refreshListSummary(listId) {
  try {
    const { data } = await ctx.api.get(`/v1/lists/${listId}`);
    ctx.updateList(data);
  } catch (error) {
    if (error?.status === 404) await ctx.refreshLists();
    else throw error;
  }
}

const scheduleSummary = debounce(refreshListSummary, 250);
const scheduleLists = debounce(() => ctx.refreshLists(), 250);
const scheduleMembers = debounce(() => membersView.refresh(), 250);
const scheduleSeries = debounce(async () => {
  await Promise.all([ctx.refreshSeries(), ctx.refreshSeriesDetail()]);
}, 300);

function renderAll() {
  listsView.render();
  itemsView.render();
  membersView.render();
  seriesView.render();
  clock.render();
}

function writeLocation() {
  const params = new URLSearchParams();
  if (ctx.state.listId) params.set("list", ctx.state.listId);
  if (ctx.state.seriesId) params.set("series", ctx.state.seriesId);
  history.replaceState(null, "", params.size ? `#${params}` : window.location.pathname);
}

function readLocation() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return { list: params.get("list"), series: params.get("series") };
}

function handleEvent({ data: event }) {
  if (!event?.id || ctx.state.seen.has(event.id)) return;
  ctx.state.seen.add(event.id);
  if (ctx.state.seen.size > MAX_SEEN_EVENTS) ctx.state.seen = new Set([...ctx.state.seen].slice(-1000));
  const type = event.type ?? "";
  if (type.startsWith("task.")) {
    const item = event.data?.item;
    const listId = event.list_id;
    if (!ctx.state.lists.some((l) => l.id === listId)) scheduleLists();
    else scheduleSummary(listId);
    if (listId === ctx.state.listId && item) {
      ctx.state.listVersion = Math.max(ctx.state.listVersion, Number(event.data.list_version ?? 0));
      itemsView.apply(item, type === "task.deleted");
    }
    if (item?.series_id) scheduleSeries();
  } else if (type.startsWith("member.")) {
    // Someone joined, left or changed role (perhaps us: our role, or the list itself, may be gone).
    scheduleLists();
    if (event.list_id === ctx.state.listId) scheduleMembers();
  } else if (type === "reminder.fired") {
    const data = event.data ?? {};
    const list = ctx.state.lists.find((l) => l.id === data.list_id);
    const zone = list?.tz ?? "UTC";
    const body = [];
    if (data.due) body.push(`Due ${formatDue(data.due, zone)}`);
    if (list) body.push(`List: ${list.title}`);
    toast(data.kind === "due" ? `Due now: ${data.title}` : `Reminder: ${data.title}`, { kind: "reminder", body });
  } else if (type === "occurrence.due") {
    const data = event.data ?? {};
    toast(`Recurring: “${data.title}” #${Number(data.occurrence) + 1}`, {
      body: [`Due ${formatInstant(Date.parse(data.at), data.tz ?? "UTC")}`],
    });
    scheduleSeries();
  }
}

function connectionChanged(state, { resumed } = {}) {
  const el = $("connection");
  el.hidden = false;
  el.dataset.state = state;
  el.textContent = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" }[state] ?? state;
  if (state !== "live") return;
  if (firstConnect) {
    firstConnect();
    firstConnect = null;
  } else if (!resumed) {
    // Reconnected without a known event id: events may have been missed, so reload what is shown.
    const reloads = [ctx.refreshLists(), ctx.refreshItems(), membersView.refresh(), ctx.refreshSeries(), ctx.refreshSeriesDetail()];
    Promise.all(reloads).catch(
      reportError,
    );
  }
}

/**
 * Check a token, then show the workspace for it; `remember` (true/false) stores a token just pasted.
 * Throws only when the token is refused or the API cannot be reached (the sign-in form stays); what goes
 * wrong while loading afterwards is reported as a toast.
 */
async function enter(newToken, remember = null) {
  token = newToken;
  await ctx.api.get("/v1/lists", { query: { limit: 1 } });
  if (remember !== null) saveToken(newToken, remember);
  ctx.state = { ...freshState(), user: claimsOf(newToken).sub ?? "(unknown user)" };
  $("account-user").textContent = ctx.state.user;
  $("account").hidden = false;
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  delete $("workspace").dataset.ready;
  // Listen first, then load: a change made while loading arrives on the stream (snapshots carry versions,
  // so applying one twice or out of order changes nothing).
  const connected = new Promise((resolve) => {
    firstConnect = resolve;
    setTimeout(resolve, FIRST_CONNECT_WAIT_MS);
  });
  stream.start();
  clearInterval(seriesPoll);
  seriesPoll = setInterval(() => {
    if (ctx.state.seriesId && document.visibilityState === "visible") ctx.refreshSeriesDetail().catch(reportError);
  }, SERIES_POLL_MS);
  load(connected).catch(reportError);
}

async function load(connected) {
  await connected;
  await Promise.all([ctx.refreshLists(), ctx.refreshSeries(), clock.detect().catch(reportError)]);
  const wanted = readLocation();
  const listId = ctx.state.lists.some((l) => l.id === wanted.list) ? wanted.list : ctx.state.lists[0]?.id ?? null;
  await ctx.selectList(listId);
  if (wanted.series && ctx.state.series.some((s) => s.id === wanted.series)) await ctx.selectSeries(wanted.series);
  $("workspace").dataset.ready = "true"; // for people: nothing; for tests and tools: loading is done
  $("main").focus();
}

function signOut(message, { keepToken = false } = {}) {
  stream.stop();
  clearInterval(seriesPoll);
  clock.reset();
  if (!keepToken) clearToken();
  token = null;
  ctx.state = freshState();
  clearToasts();
  renderAll();
  $("workspace").hidden = true;
  $("account").hidden = true;
  $("connection").hidden = true;
  $("sign-in").hidden = false;
  history.replaceState(null, "", window.location.pathname);
  const error = $("sign-in-error");
  error.hidden = !message;
  error.textContent = message ?? "";
  $("token").value = "";
  $("token").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("sign-in-error");
  error.hidden = true;
  const pasted = normalizeToken($("token").value);
  if (!pasted) {
    error.textContent = "Paste a token first.";
    error.hidden = false;
    return;
  }
  try {
    await enter(pasted, $("remember").checked);
  } catch (failure) {
    token = null;
    error.textContent = errorLines(failure).join(" ");
    error.hidden = false;
  }
});

$("sign-out").addEventListener("click", () => signOut(null));
window.addEventListener("online", () => {
  if (ctx.state.user) stream.start();
});

if (token) {
  enter(token).catch((error) => {
    // Only a rejected token is forgotten; an unreachable server keeps it for the next reload.
    const keepToken = error?.status !== 401;
    signOut(`${keepToken ? "Could not load" : "Please sign in again"}: ${errorLines(error).join(" ")}`, { keepToken });
  });
} else {
  signOut(null);
}
