// The offline queue: reports made without a network wait on the phone (IndexedDB, photos as
// the compressed JPEG blobs) and are sent when the network is back — photos first, then the
// report with the client_id it got when it was written, so the server never makes two cases
// of one report however often a send is retried.
import { api } from "./api.js";
import { isNetworkError, uploadPhoto } from "./report-common.js";

const DB_NAME = "grid-report-queue";
const STORE = "reports";
const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 30000;

let dbPromise = null;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "client_id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return dbPromise;
}

async function run(mode, work) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("IndexedDB 事务中止"));
  });
}

const putItem = (item) => run("readwrite", (s) => s.put(item));
const deleteItem = (clientId) => run("readwrite", (s) => s.delete(clientId));
const allItems = () => run("readonly", (s) => s.getAll());

export class ReportQueue {
  /** Reports of `username` only: another user of the same phone never sends them. */
  constructor(username, { onChange, onSent } = {}) {
    this.username = username;
    this.onChange = onChange || (() => {});
    this.onSent = onSent || (() => {});
    this.items = [];
    this.offline = !navigator.onLine;
    this.flushing = false;
    this.delay = FIRST_RETRY_MS;
    this.timer = null;
    addEventListener("online", () => { this.offline = false; this.delay = FIRST_RETRY_MS; this.changed(); this.flush(); });
    addEventListener("offline", () => { this.offline = true; this.changed(); });
  }

  changed() { this.onChange(this); }

  get pending() { return this.items.filter((i) => i.state !== "failed"); }
  get failed() { return this.items.filter((i) => i.state === "failed"); }

  async load() {
    const items = await allItems();
    this.items = items.filter((i) => i.username === this.username).sort((a, b) => a.saved_at.localeCompare(b.saved_at));
    this.changed();
    return this.items;
  }

  async add(item) {
    await putItem({ ...item, username: this.username, state: "pending", saved_at: item.saved_at || new Date().toISOString() });
    await this.load();
    this.schedule();
  }

  async remove(clientId) {
    await deleteItem(clientId);
    await this.load();
  }

  async retry(clientId) {
    const item = this.items.find((i) => i.client_id === clientId);
    if (!item) return;
    await putItem({ ...item, state: "pending", error: null });
    await this.load();
    this.delay = FIRST_RETRY_MS;
    await this.flush();
  }

  markOffline() { this.offline = true; this.changed(); this.schedule(); }

  schedule() {
    clearTimeout(this.timer);
    if (!this.pending.length) return;
    this.timer = setTimeout(() => this.flush(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_RETRY_MS);
  }

  /** Send what waits; safe to call any time (one flush at a time, across tabs too). */
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    clearTimeout(this.timer);
    try {
      const work = () => this.sendAll();
      if (navigator.locks) await navigator.locks.request(DB_NAME, work);
      else await work();
    } finally {
      this.flushing = false;
    }
  }

  async sendAll() {
    await this.load();  // another tab may have sent some meanwhile
    const sent = [];
    let stopped = false;
    for (const item of this.pending) {
      try {
        sent.push({ item, case: await this.sendOne(item) });
        await deleteItem(item.client_id);
        this.offline = false;
      } catch (err) {
        if (isNetworkError(err) || err.status >= 500 || err.status === 429 || err.status === 401) {
          if (isNetworkError(err)) this.offline = true;
          stopped = true;
          break;  // try again later, in order
        }
        // The server refused this report (e.g. outside the city): it needs the worker.
        await putItem({ ...item, state: "failed", error: err.message });
      }
    }
    await this.load();
    if (sent.length) this.onSent(sent);
    if (stopped) this.schedule();
    else this.delay = FIRST_RETRY_MS;
  }

  async sendOne(item) {
    // Photos first; each id is saved at once so a retry never uploads a photo twice.
    for (let i = 0; i < item.photos.length; i++) {
      const photo = item.photos[i];
      if (photo.id) continue;
      const { id } = await uploadPhoto(photo.blob);
      item.photos[i] = { id };
      await putItem(item);
    }
    return api.post("/api/reports", { ...item.body, photos: item.photos.map((p) => p.id), client_id: item.client_id });
  }
}
