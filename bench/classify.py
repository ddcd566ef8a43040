"""Category suggestion (智能分类) and knowledge search benchmark, beside baselines in the same run.

    .venv/bin/python bench/classify.py [--city data/cities/hangzhou-demo] [--articles 10000]

Classifier: trained as the server trains it (dispatch/assist/classifier.py) on the city
package's names, keywords and examples plus the corpus's `train` split (standing in for the
tickets operators have classified), then scored on the `heldout` split, whose tickets are worded
with other templates and other problem phrases (data/cities/hangzhou_texts.py). Reports top-1,
top-3, macro-F1 and the would-be 退单 rate: the share of held-out tickets whose top suggestion
routes (dispatch/rules Router, at the ticket's place) to another department than the true
category would. Baseline: keyword matching over the category names and `keywords`.

Knowledge search: the demo's knowledge.yaml repeated with perturbed text up to `--articles`
articles; median and p99 time of a search (top 5), beside a brute-force substring scan.

`GET /api/assist` end to end (`--tickets N`, 0 skips): the demo server in this process on the
embedded store, N hotline tickets filed through the API with callers and places, then
sequential requests with held-out texts, a place and a known caller's number; p50/p99 beside
`GET /api/route` (the routing preview the console already calls) in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sklearn.metrics import f1_score  # noqa: E402

from dispatch.assist.classifier import category_texts, fit, keyword_baseline  # noqa: E402
from dispatch.assist.knowledge import KnowledgeIndex  # noqa: E402
from dispatch.rules import Router  # noqa: E402
from geo.loader import load_city  # noqa: E402

# a working-hours instant: the time-of-day rules do not fire, so 退单 reflects the category only
AT = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def evaluate(name, predict, rows, router):
    top1 = top3 = returns = 0
    truth, first = [], []
    for r in rows:
        got = predict(r["text"])
        truth.append(r["category"])
        first.append(got[0] if got else "none")
        top1 += bool(got) and got[0] == r["category"]
        top3 += r["category"] in got[:3]
        final = router.route(r["lng"], r["lat"], r["category"], source="hotline", text=r["text"], at=AT).department_id
        suggested = (router.route(r["lng"], r["lat"], got[0], source="hotline", text=r["text"], at=AT).department_id
                     if got else None)
        returns += suggested != final
    n = len(rows)
    f1 = f1_score(truth, first, average="macro", labels=sorted(set(truth)), zero_division=0)
    print(f"  {name:<34} top-1 {top1 / n:6.1%}   top-3 {top3 / n:6.1%}   macro-F1 {f1:5.3f}   退单 {returns / n:6.1%}")


def classify(city, corpus_rows):
    train = [r for r in corpus_rows if r["split"] == "train"]
    held = [r for r in corpus_rows if r["split"] == "heldout"]
    package = [(t, code) for code, c in city.categories.items() for t in category_texts(c)]
    router = Router(city)
    print(f"held-out tickets: {len(held)} over {len({r['category'] for r in held})} categories "
          f"(training: {len(package)} package texts + {len(train)} corpus tickets)")
    baseline = keyword_baseline(city.categories)
    evaluate("baseline: keyword match", lambda t: baseline(t, 3), held, router)
    for label, pairs in (("model: package words only", package),
                         ("model: package + corpus train", package + [(r["text"], r["category"]) for r in train])):
        t0 = time.perf_counter()
        model = fit([t for t, _ in pairs], [c for _, c in pairs], version=1)
        took = time.perf_counter() - t0
        evaluate(label, lambda t: [c for c, _ in model.suggest(t, 3)], held, router)
        print(f"    trained on {model.examples} texts in {took:.2f} s; stored blob {len(model.to_bytes()) / 1e6:.2f} MB")
    texts = [r["text"] for r in held]
    t0 = time.perf_counter()
    for t in texts:
        model.suggest(t, 3)
    print(f"  suggestion latency: {(time.perf_counter() - t0) / len(texts) * 1000:.2f} ms per ticket (one at a time)")


def knowledge(city, n_articles):
    rng = random.Random(7)
    base = [{"id": a.id, "title": a.title, "questions": list(a.questions), "answer": a.answer, "tags": list(a.tags)}
            for a in city.knowledge]
    filler = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理世车"
    articles = []
    for i in range(n_articles):
        a = dict(base[i % len(base)])
        a["id"] = f"{a['id']}-{i}"
        noise = "".join(rng.choice(filler) for _ in range(30))
        a["title"] = a["title"] + noise[:4]
        a["answer"] = a["answer"] + noise
        articles.append(a)
    t0 = time.perf_counter()
    index = KnowledgeIndex(articles)
    built = time.perf_counter() - t0
    queries = [q for a in city.knowledge for q in a.questions]
    times, scan, cpu = [], [], []
    for q in queries:
        t0, c0 = time.perf_counter(), time.thread_time()
        index.search(q, 5)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        t0 = time.perf_counter()
        sum(1 for a in articles if any(ch in a["title"] or ch in a["answer"] for ch in q))
        scan.append((time.perf_counter() - t0) * 1000)
    times.sort()
    scan.sort()
    cpu.sort()
    hits = sum(1 for a in city.knowledge for q in a.questions
               if any(r["id"].startswith(a.id + "-") for r in index.search(q, 3)))
    print(f"knowledge search over {n_articles} articles (index built in {built:.2f} s), {len(queries)} questions:")
    print(f"  BM25 char n-grams: median {statistics.median(times):6.2f} ms   p99 {times[int(len(times) * 0.99)]:6.2f} ms   "
          f"right article in top 3: {hits / len(queries):.0%}")
    print(f"    thread CPU time: median {statistics.median(cpu):6.2f} ms   p99 {cpu[int(len(cpu) * 0.99)]:6.2f} ms")
    print(f"  baseline: substring scan: median {statistics.median(scan):6.2f} ms   p99 {scan[int(len(scan) * 0.99)]:6.2f} ms")


async def assist_latency(city_path, rows, n_tickets, n_requests=300, uri="embedded", tune=None):
    import tornado.httpclient
    import tornado.httpserver
    import tornado.netutil
    from urllib.parse import urlencode

    import yaml

    from dispatch.app import make_app
    from dispatch.config import load_config

    overrides = [f"city.path={city_path}", "scheduler.enabled=false", f"storage.uri={uri}"]
    database = f"bench_assist_{os.getpid()}"
    if uri != "embedded":  # a throwaway database of this run's own, demo accounts allowed
        overrides += [f"storage.database={database}", "auth.allow_demo_passwords=true",
                      "auth.allow_random_secret=true"]
    config = load_config(None, overrides)
    app = await make_app(config)
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    http = tornado.httpclient.AsyncHTTPClient()
    with open(os.path.join(city_path, "users.yaml"), encoding="utf-8") as f:
        op = next(u for u in yaml.safe_load(f) if u["role"] == "operator")
    r = await http.fetch(base + "/api/login", method="POST", headers={"Content-Type": "application/json"},
                         body=json.dumps({"username": op["username"], "password": str(op["password"])}))
    headers = {"Authorization": "Bearer " + json.loads(r.body)["token"], "Content-Type": "application/json"}
    rng = random.Random(3)
    phones = [f"138{rng.randint(10_000_000, 99_999_999)}" for _ in range(max(1, n_tickets // 3))]
    t0 = time.perf_counter()
    for i in range(n_tickets):
        row = rows[i % len(rows)]
        body = {"type": "complaint", "content": row["text"], "category": row["category"],
                "caller": {"name": "来电人", "phone": rng.choice(phones)},
                "location": {"type": "Point", "coordinates": [row["lng"], row["lat"]]}}
        await http.fetch(base + "/api/tickets", method="POST", headers=headers, body=json.dumps(body))
    filed = time.perf_counter() - t0
    if tune is not None:  # what a FerretDB deployment needs (docs/PERFORMANCE.md "FerretDB"): GIN indexes
        statements = tune(database)
        print(f"    PostgreSQL tuned: {len(statements)} GIN indexes (bench/scale.py tune_postgresql)")
    while app.ctx.assist.suggester.model is None:
        await asyncio.sleep(0.2)
    held = [r for r in rows if r["split"] == "heldout"]

    async def timed(path, cpu):
        # client and server share this thread: its CPU time is the request's work, without the
        # time spent waiting for a core on a shared machine
        t, c = time.perf_counter(), time.thread_time()
        await http.fetch(base + path, headers=headers)
        cpu.append((time.thread_time() - c) * 1000)
        return (time.perf_counter() - t) * 1000

    assist_ms, route_ms, assist_cpu, route_cpu = [], [], [], []
    for i in range(n_requests):
        row = held[i % len(held)]
        assist_ms.append(await timed("/api/assist?" + urlencode(
            {"text": row["text"], "lng": row["lng"], "lat": row["lat"], "phone": rng.choice(phones)}), assist_cpu))
        route_ms.append(await timed("/api/route?" + urlencode(
            {"lng": row["lng"], "lat": row["lat"], "category": row["category"], "source": "hotline", "text": row["text"]}),
            route_cpu))
    server.stop()
    await app.ctx.assist.stop()
    if uri != "embedded":
        await app.ctx.storage.drop()
    await app.ctx.storage.close()
    for name, ms, cpu in (("GET /api/assist", assist_ms, assist_cpu), ("baseline: GET /api/route", route_ms, route_cpu)):
        ms.sort()
        cpu.sort()
        print(f"  {name:<26} wall p50 {statistics.median(ms):6.1f} ms  p99 {ms[int(len(ms) * 0.99)]:6.1f} ms   "
              f"CPU p50 {statistics.median(cpu):5.1f} ms  p99 {cpu[int(len(cpu) * 0.99)]:5.1f} ms")
    print(f"    ({n_tickets} tickets filed in {filed:.0f} s, {len(phones)} callers; {n_requests} sequential requests each)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", default="data/cities/hangzhou-demo")
    ap.add_argument("--articles", type=int, default=10000)
    ap.add_argument("--tickets", type=int, default=3000, help="tickets filed before timing GET /api/assist (0: skip)")
    ap.add_argument("--uri", default="embedded",
                    help="the store for GET /api/assist: embedded, or a mongodb:// URI (a database of its own, dropped after)")
    ap.add_argument("--skip-offline", action="store_true", help="only GET /api/assist (no classifier or knowledge figures)")
    ap.add_argument("--tuned-ferretdb", action="store_true",
                    help="GET /api/assist on a FerretDB of its own started as bench/scale.py starts it "
                         "(plan_cache_mode=force_custom_plan, GIN indexes; needs $DEVDB_FERRETDB, $DEVDB_POSTGRESQL_URL)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}")
    city = load_city(args.city)
    with open(os.path.join(args.city, "corpus.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    if not args.skip_offline:
        classify(city, rows)
        knowledge(city, args.articles)
    if args.tickets and args.tuned_ferretdb:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from scale import pg_url, psql, start_ferretdb, tune_postgresql

        pg_base, pg_database = os.environ["DEVDB_POSTGRESQL_URL"], f"bench_assist_pg_{os.getpid()}"
        ferret, port = start_ferretdb(os.environ["DEVDB_FERRETDB"], pg_base, pg_database, True)
        try:
            print("GET /api/assist over HTTP, demo city, FerretDB with custom plans and GIN indexes:")
            asyncio.run(assist_latency(args.city, rows, args.tickets, uri=f"mongodb://127.0.0.1:{port}/",
                                       tune=lambda db: tune_postgresql(pg_url(pg_base, pg_database), db)))
        finally:
            ferret.terminate()
            ferret.wait(20)
            psql(pg_url(pg_base, "postgres"), f'DROP DATABASE IF EXISTS "{pg_database}"')
    elif args.tickets:
        engine = "embedded store" if args.uri == "embedded" else f"MongoDB-protocol server {args.uri}"
        print(f"GET /api/assist over HTTP, demo city, {engine}:")
        asyncio.run(assist_latency(args.city, rows, args.tickets, uri=args.uri))


if __name__ == "__main__":
    main()
