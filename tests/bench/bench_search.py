"""Benchmark: searching one's conversations over a large history.

    .venv/bin/python -m tests.bench.bench_search                      # SQLite, temp file
    .venv/bin/python -m tests.bench.bench_search --database-url postgres://postgres@127.0.0.1:5432/postgres

Builds a throwaway database (a temp SQLite file, or a `bench_search_<pid>` database on
the PostgreSQL server given), migrates it and writes one user's 10,000 conversations of
6 messages each (a question and an answer, three times; prose drawn from a common
vocabulary, a topic's words and a long tail of rare words) and 2,500 conversations for
each of four other users, interleaved in time as a team writes them. Then it times, per
query, the service (`search_conversations`) and the view (`GET /search/?q=` as htmx
sends it, through Django's test client: middleware, session, template) and prints the
median and p95 of each. The queries: a very common word, a topic's word, two words,
the keystrokes of "kube" as typed, a rare word, a word only other users wrote, nothing,
operator characters. Also the cost a write pays for the index: an answer's streaming
save and its final save. The target is well under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGET_MS = 100

COMMON_TEXT = """the of and to a in is it you that he was for on are with as i his they be at one
have this from or had by not word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would
like so these her long make thing see him two has look more day could go come did number
sound no most people my over know water than call first who may down side been now find any
new work part take get place made live where after back little only round man year came show
every good me give our under name very through just form sentence great think say help low
line differ turn cause much mean before move right boy old too same tell does set three want
air well also play small end put home read hand port large spell add even land here must big
high such follow act why ask men change went light kind off need house picture try us again
animal point mother world near build self earth father head stand own page should country
found answer school grow study still learn plant cover food sun four between state keep eye
never last let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next white children begin
got walk example ease paper group always music those both mark often letter until mile river
car feet care second book carry took science eat room friend began idea fish mountain stop
once base hear horse cut sure watch color face wood main enough plain girl usual young ready
above ever red list though feel talk bird soon body dog family direct pose leave song measure
door product black short numeral class wind question happen complete ship area half rock order
fire south problem piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast verb sing listen
six table travel less morning ten simple several vowel toward war lay against pattern slow
center love person money serve appear road map rain rule govern pull cold notice voice unit
power town fine certain fly fall lead cry dark machine note wait plan figure star box noun
field rest correct able pound done beauty drive stood contain front teach week final gave
green oh quick develop ocean warm free minute strong special mind behind clear tail produce
fact street inch multiply nothing course stay wheel full force blue object decide surface
deep moon island foot system busy test record boat common gold possible plane stead dry
wonder laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring
yes distant fill east paint language among"""
COMMON = COMMON_TEXT.split()

TOPICS = {
    "kubernetes": "kubernetes pods ingress helm kubectl deployment namespace node cluster "
    "container service replica os.path.join",
    "postgres": "postgres vacuum index query planner replication wal transaction schema "
    "migration explain",
    "python": "python asyncio typing decorator generator pip virtualenv pytest django dataclass",
    "react": "react component hooks state props render effect jsx bundle webpack",
    "sourdough": "sourdough starter flour hydration proof oven crust crumb levain knead",
    "marathon": "marathon training pace tempo recovery shoes interval taper hydration mileage",
    "taxes": "taxes deduction invoice receipt quarterly accountant filing refund income audit",
    "garden": "garden tomato compost soil seedling mulch prune harvest irrigation basil",
    "travel": "itinerary flight hotel passport museum train lisbon kyoto luggage visa",
    "rust": "rust borrow lifetime trait cargo ownership tokio macro enum crate",
    "guitar": "guitar chord fret strum capo tuning scale arpeggio amplifier pick",
    "security": "security password phishing encryption token firewall audit certificate "
    "vulnerability patch",
    "ml": "model training dataset gradient embedding transformer tokenizer inference "
    "finetune evaluation",
    "email": "email draft reply subject meeting agenda deadline colleague follow-up summary",
}
# Only the other users write about this: the bench user finds nothing, after the index
# has walked their matches (the worst case for SQLite's newest-first scan).
OTHERS_ONLY = "zeppelin airship hangar helium dirigible gondola mooring"
QUESTION_STARTS = ["how do i", "can you explain", "what is the best way to", "why does", "help me"]


class Prose:
    """Deterministic text: common words (Zipf), the topic's words, a long tail of rare
    made-up words, with sentences, commas and the odd code-like token."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        syllables = ["ka", "lo", "mir", "ven", "tor", "sa", "qui", "dre", "pol", "ax", "zu"]
        rare = {
            "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(3, 4)))
            for _ in range(40_000)
        }
        self.rare = sorted(rare)
        self.rng.shuffle(self.rare)
        # Cumulative weights, summed once (random.choices would sum them every call).
        self.common_weights = list(accumulate(1 / (rank + 1) for rank in range(len(COMMON))))
        self.rare_weights = list(
            accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(self.rare)))
        )

    def words(self, count: int, topic: list[str]) -> list[str]:
        kinds = self.rng.choices(["common", "topic", "rare"], [0.72, 0.13, 0.15], k=count)
        common = iter(self.rng.choices(COMMON, cum_weights=self.common_weights, k=count))
        rare = iter(self.rng.choices(self.rare, cum_weights=self.rare_weights, k=count))
        picked = []
        for kind in kinds:
            if kind == "topic":
                picked.append(self.rng.choice(topic))
            else:
                picked.append(next(common) if kind == "common" else next(rare))
        return picked

    def sentences(self, low: int, high: int, topic: list[str]) -> str:
        out = []
        for _ in range(self.rng.randint(low, high)):
            words = self.words(self.rng.randint(6, 20), topic)
            if len(words) > 8 and self.rng.random() < 0.3:
                words[self.rng.randrange(2, len(words) - 1)] += ","
            out.append(" ".join(words).capitalize() + self.rng.choice([".", ".", ".", "?", "!"]))
        return " ".join(out)

    def question(self, topic: list[str]) -> str:
        start = self.rng.choice(QUESTION_STARTS)
        return f"{start} {' '.join(self.words(self.rng.randint(5, 25), topic))}?".capitalize()


def _prepare_database(url: str | None) -> tuple[str, Callable[[], None]]:
    if not url:
        folder = tempfile.mkdtemp(prefix="bench-search-")
        return f"sqlite:///{folder}/bench.sqlite3", lambda: None
    import psycopg

    name = f"bench_search_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.rsplit("/", 1)[0] + f"/{name}", drop


def build_data(*, conversations: int, others: int, per_other: int) -> dict[str, Any]:
    """The bench user (`bench`) and the others, their conversations interleaved."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from generation.models import Conversation, Message

    users = get_user_model()
    bench = users.objects.create_user("bench", password="bench-pw-123")
    other_users = [users.objects.create_user(f"other{n}") for n in range(others)]
    prose = Prose()
    rng = prose.rng
    owners = [bench] * conversations + [u for u in other_users for _ in range(per_other)]
    rng.shuffle(owners)
    topic_names = list(TOPICS)
    batch = 500
    for start in range(0, len(owners), batch):
        chunk = owners[start : start + batch]
        plans = []
        for owner in chunk:
            name = rng.choice(topic_names)
            topic = TOPICS[name].split()
            if owner != bench and rng.random() < 0.3:
                topic = OTHERS_ONLY.split()
            first = prose.question(topic)
            plans.append((owner, topic, first))
        with transaction.atomic():
            made = Conversation.objects.bulk_create(
                Conversation(owner=owner, title=Conversation().title_from(first))
                for owner, _, first in plans
            )
            messages = []
            for conversation, (_, topic, first) in zip(made, plans, strict=True):
                for turn in range(3):
                    question = first if turn == 0 else prose.question(topic)
                    user_turn = Message(conversation=conversation, role="user", content=question)
                    messages.append(user_turn)
                    answer = prose.sentences(3, 12, topic)
                    messages.append(
                        Message(conversation=conversation, role="assistant", content=answer)
                    )
            Message.objects.bulk_create(messages, batch_size=1000)
        done = start + len(chunk)
        if done % 5000 < batch:
            print(f"  {done:,} conversations written", flush=True)
    rare_word = prose.rare[400]  # in a few hundred messages
    return {"bench": bench, "rare_word": rare_word}


def queries(rare_word: str) -> dict[str, str]:
    return {
        "very common word": "the",
        "topic word": "kubernetes",
        "two words": "kubernetes ingress",
        "typing: k": "k",
        "typing: ku": "ku",
        "typing: kub": "kub",
        "typing: kube": "kube",
        "three common words": "how do i",
        "rare word": rare_word,
        "only others wrote it": "zeppelin",
        "no match": "qqqzzzx",
        "operators": '"NEAR( AND *',
    }


def timed(runs: int, call: Callable[[], object]) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each run (SQLite works in this process, so its CPU
    time counts the query too: steadier than wall time on a busy machine)."""
    call()  # warm: caches, compiled statements
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def write_costs(bench: Any) -> dict[str, float]:
    """What a message's writes cost with the index: an answer's streaming saves (no index
    work) and its final save (indexes ~2,000 characters), medians over 200."""
    from django.utils import timezone

    from generation.models import Conversation, Message

    conversation = Conversation.objects.filter(owner=bench).first()
    assert conversation is not None
    text = Prose(seed=11).sentences(12, 12, TOPICS["python"].split())[:2000]
    streaming, final = [], []
    for _ in range(200):
        answer = Message.objects.create(
            conversation=conversation, role="assistant", status="streaming", content=""
        )
        rows = Message.objects.filter(pk=answer.pk)
        t0 = time.perf_counter()
        rows.update(content=text[:1000], updated_at=timezone.now())
        streaming.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        rows.update(content=text, status="complete", updated_at=timezone.now())
        final.append((time.perf_counter() - t0) * 1000)
        answer.delete()
    return {
        "streaming_save_ms": statistics.median(streaming),
        "final_save_ms": statistics.median(final),
    }


def index_sizes() -> dict[str, float]:
    """SQLite only: what the search index takes on disk, in MB."""
    from django.db import connection

    if connection.vendor != "sqlite":
        return {}
    queries = {
        "index_mb": "SELECT (SELECT sum(length(block)) FROM generation_message_fts_data)"
        " + (SELECT sum(length(block)) FROM generation_conversation_fts_data)",
        "copy_mb": "SELECT sum(length(c0)) FROM generation_message_fts_content",
        "text_mb": "SELECT sum(length(content)) FROM generation_message",
        "file_mb": "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
    }
    with connection.cursor() as cursor:
        out = {}
        for name, sql in queries.items():
            cursor.execute(sql)
            out[name] = (cursor.fetchone() or [0])[0] / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=4, help="other users")
    parser.add_argument("--per-other", type=int, default=2_500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--existing", default="", help="DATABASE_URL of a kept bench database")
    args = parser.parse_args()

    if args.existing:
        db_url, cleanup = args.existing, lambda: None
    else:
        db_url, cleanup = _prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-search-data-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    sys.path.insert(0, str(ROOT))
    import django

    from providers.crypto import generate_key_entry

    os.environ["ENCRYPTION_KEYS"] = generate_key_entry()
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from generation.models import Message
    from generation.search import search_conversations
    from tests.bench import common

    try:
        if not args.existing:
            call_command("migrate", verbosity=0)
            started = time.monotonic()
            data = build_data(
                conversations=args.conversations, others=args.others, per_other=args.per_other
            )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"data ready in {time.monotonic() - started:.0f} s on {connection.vendor}")
        else:
            data = {"bench": get_user_model().objects.get(username="bench")}
            data["rare_word"] = Prose().rare[400]
        bench = data["bench"]
        client = Client()
        client.force_login(bench)
        total = Message.objects.count()
        mine = Message.objects.filter(conversation__owner=bench).count()
        print(f"{mine:,} messages of the bench user, {total:,} in all ({connection.vendor})")

        rows: list[dict[str, Any]] = []
        table: list[list[Any]] = []
        every_service: list[float] = []
        every_view: list[float] = []
        every_cpu: list[float] = []
        for name, query in queries(data["rare_word"]).items():
            hits = len(search_conversations(user=bench, query=query))

            def service_call(q: str = query) -> object:
                return search_conversations(user=bench, query=q)

            def view_call(q: str = query) -> object:
                return client.get("/search/", {"q": q}, headers={"HX-Request": "true"})

            service, _ = timed(args.runs, service_call)
            view, view_cpu = timed(args.runs, view_call)
            every_cpu += view_cpu
            every_service += service
            every_view += view
            row = {
                "query": name,
                "text": query,
                "hits": hits,
                "service_p50_ms": statistics.median(service),
                "service_p95_ms": p95(service),
                "view_p50_ms": statistics.median(view),
                "view_p95_ms": p95(view),
                "view_cpu_p50_ms": statistics.median(view_cpu),
            }
            rows.append(row)
            table.append(
                [f"{name} ({query})", hits, row["service_p50_ms"], row["service_p95_ms"],
                 row["view_p50_ms"], row["view_p95_ms"], row["view_cpu_p50_ms"]]
            )  # fmt: skip
        table.append(
            ["all queries", "", statistics.median(every_service), p95(every_service),
             statistics.median(every_view), p95(every_view), statistics.median(every_cpu)]
        )  # fmt: skip
        print()
        common.print_table(
            ["query", "hits", "service p50", "p95", "view p50", "p95", "view CPU p50"], table
        )
        costs = write_costs(bench)
        sizes = index_sizes()
        if sizes:
            print(
                "\nSQLite index: {index_mb:.1f} MB of index and {copy_mb:.1f} MB of copied text"
                " for {text_mb:.1f} MB of message text; database file {file_mb:.1f} MB".format(
                    **sizes
                )
            )
        print(
            f"\nwrites: an answer's streaming save {costs['streaming_save_ms']:.2f} ms, "
            f"its final save (indexed, 2,000 chars) {costs['final_save_ms']:.2f} ms (medians)"
        )
        worst = max(r["view_p95_ms"] for r in rows)
        print(f"load average at the end: {os.getloadavg()}")
        print(
            f"SEARCH ({connection.vendor}): view p50 {statistics.median(every_view):.1f} ms, "
            f"p95 {p95(every_view):.1f} ms over all queries; worst query p95 {worst:.1f} ms "
            f"(target < {TARGET_MS} ms)"
        )
        common.write_json(
            f"search_{connection.vendor}",
            {
                "benchmark": "search",
                "database": connection.vendor,
                "machine": common.machine(),
                "messages": total,
                "bench_user_messages": mine,
                "target_ms": TARGET_MS,
                "rows": rows,
                "writes": costs,
                "sqlite_sizes_mb": sizes,
            },
        )
    finally:
        if args.keep:
            print(f"kept: DATABASE_URL={db_url}")
        else:
            cleanup()


if __name__ == "__main__":
    main()
