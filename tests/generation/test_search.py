"""Searching one's own conversations from the sidebar: the service on the database the
suite runs on (SQLite's FTS5, or PostgreSQL's full-text search in the PostgreSQL pass),
the view, and the sidebar in Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.urls import reverse

from generation import services
from generation.models import Conversation, Message
from generation.search import Segment, search_conversations
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text, send_hello, wait_for

HX = {"HX-Request": "true"}
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's index")


def chat(owner, title: str, *texts: str) -> Conversation:
    """A conversation of finished messages, user and assistant in turn."""
    conversation = Conversation.objects.create(owner=owner, title=title)
    for number, text in enumerate(texts):
        role = Message.Role.USER if number % 2 == 0 else Message.Role.ASSISTANT
        Message.objects.create(conversation=conversation, role=role, content=text)
    return conversation


def found(user, query: str) -> list[str]:
    return [hit.conversation.title for hit in search_conversations(user=user, query=query)]


def marked(segments: tuple[Segment, ...]) -> list[str]:
    return [segment.text for segment in segments if segment.marked]


# --- the service -----------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def test_a_title_matches(user):
    chat(user, "Kubernetes ingress notes", "How do I route traffic?")
    chat(user, "Sourdough", "How long should it rise?")
    hits = search_conversations(user=user, query="ingress")
    assert [hit.conversation.title for hit in hits] == ["Kubernetes ingress notes"]
    assert marked(hits[0].title) == ["ingress"]


def test_message_text_matches_user_and_assistant_messages(user):
    chat(user, "Questions", "Which bread flour is best?", "Use a strong flour with protein.")
    chat(user, "Other", "Tell me about tides", "The moon pulls the oceans.")
    assert found(user, "bread") == ["Questions"]  # the user's message
    assert found(user, "protein") == ["Questions"]  # the assistant's answer
    hit = search_conversations(user=user, query="oceans")[0]
    assert marked(hit.snippet) == ["oceans"]
    assert "".join(s.text for s in hit.snippet) == "The moon pulls the oceans."
    assert marked(hit.title) == []  # the title did not match: shown as it is


def test_the_last_word_matches_as_a_prefix(user):
    chat(user, "Cluster", "We deploy on kubernetes with helm charts.")
    assert found(user, "kube") == ["Cluster"]
    assert found(user, "deploy kube") == ["Cluster"]
    assert found(user, "DEPLOY KUBERNETES") == ["Cluster"]  # case does not matter
    assert found(user, "kube deploy") == []  # only the last word is a prefix


def test_every_word_must_occur_in_the_title_or_in_one_message(user):
    chat(user, "Cluster", "We deploy on kubernetes.", "Helm charts help.")
    assert found(user, "kubernetes deploy") == ["Cluster"]
    assert found(user, "kubernetes helm") == []  # two different messages
    assert found(user, "kubernetes bananas") == []


def test_words_are_split_on_punctuation_as_a_user_expects(user):
    chat(
        user,
        "Code",
        "Call os.path.join() on it",
        "Docs at https://kubernetes.io/docs/home or mail ops@example.com",
        "Edit /usr/local/bin/run_tests.sh then <script>alert(1)</script> and a-b-c",
    )
    for query in ["join", "path", "kubernetes", "docs home", "example", "ops", "local bin"]:
        assert found(user, query) == ["Code"], query
    for query in ["run tests", "script", "alert", "os.path.join", "kubernetes.io", "a-b-c"]:
        assert found(user, query) == ["Code"], query


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "AND",
        "NEAR(",
        "-",
        "'",
        "OR",
        "NOT",
        "^",
        "(",
        ")",
        ":",
        "{content}:x",
        "+",
        '"unclosed',
        "a' OR '1'='1",
        "%",
        "_",
        "\\",
        "\x00",
        "\u202e",
        "🙂",
        "...",
        "x" * 300,
    ],
)
def test_any_input_gives_no_error(user, query):
    chat(user, "Plain", "Quiet words here")
    assert search_conversations(user=user, query=query) == []


@pytest.mark.parametrize(
    "query",
    [
        '"kubernetes',
        "kubernetes*",
        "-kubernetes",
        "NEAR(kubernetes",
        "kubernetes'",
        "(kubernetes)",
        "title:kubernetes",
        "kubernetes AND",
        "^kube",
    ],
)
def test_operators_are_plain_words(user, query):
    chat(user, "Cluster", "We run kubernetes near the title and things")
    assert found(user, query) == ["Cluster"]


def test_empty_input_finds_nothing(user):
    chat(user, "Anything", "at all")
    assert found(user, "") == []
    assert found(user, "   ") == []


def test_another_users_conversations_never_appear(user, other_user):
    mine = chat(user, "My kubernetes notes", "kubernetes pods")
    chat(other_user, "Their kubernetes notes", "kubernetes secrets", "more kubernetes")
    chat(other_user, "Secrets", "only theirs: zanzibar")
    assert [hit.conversation for hit in search_conversations(user=user, query="kube")] == [mine]
    assert found(user, "zanzibar") == []
    assert found(user, "secrets") == []
    assert found(other_user, "pods") == []


def test_a_deleted_conversation_disappears(user):
    gone = chat(user, "Old kubernetes chat", "kubernetes pods")
    kept = chat(user, "New kubernetes chat", "kubernetes nodes")
    services.delete_conversation(conversation=gone)
    assert [hit.conversation for hit in search_conversations(user=user, query="kubernetes")] == [
        kept
    ]
    assert found(user, "pods") == []


def test_a_renamed_conversation_is_found_by_its_new_title_only(user):
    conversation = chat(user, "Draft title", "hello")
    services.rename_conversation(conversation=conversation, title="Quarterly planning")
    assert found(user, "quarterly") == ["Quarterly planning"]
    assert found(user, "draft") == []


def test_an_answer_is_found_by_its_final_text_once_it_stops_streaming(user):
    conversation = chat(user, "Streaming", "Tell me a story")
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        content="Once upon",
    )
    # The worker's periodic saves, then its final one (all as plain UPDATEs).
    Message.objects.filter(pk=answer.pk).update(content="Once upon a time a dragon")
    assert found(user, "dragon") == []  # still being written: not indexed yet
    Message.objects.filter(pk=answer.pk).update(
        content="Once upon a time a dragon slept.", status=Message.Status.COMPLETE
    )
    hit = search_conversations(user=user, query="dragon slept")[0]
    assert "".join(s.text for s in hit.snippet) == "Once upon a time a dragon slept."
    # A finished message whose text changes is found by the new text only.
    Message.objects.filter(pk=answer.pk).update(content="A different ending with a unicorn")
    assert found(user, "dragon") == []
    assert found(user, "unicorn") == ["Streaming"]
    # A stopped or failed answer keeps the text it had, and is found by it.
    stopped = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING
    )
    Message.objects.filter(pk=stopped.pk).update(
        content="cut short by a griffin", status=Message.Status.CANCELLED
    )
    assert found(user, "griffin") == ["Streaming"]


@pytest.mark.django_db(transaction=True)
def test_a_streamed_answer_is_found_by_its_final_words(user, make_chat_provider, huey_consumer):
    provider = make_chat_provider("tokens=30&delay=5")
    answer = send_hello(user, provider, "Write something")
    wait_for(lambda: Message.objects.get(pk=answer.pk).status == Message.Status.COMPLETE)
    final = expected_text(30)
    assert Message.objects.get(pk=answer.pk).content == final
    last_word = final.split()[-1].strip(".,;:!?")
    hits = search_conversations(user=user, query=last_word)
    assert [hit.conversation.pk for hit in hits] == [answer.conversation_id]
    assert last_word.lower() in [word.lower() for word in marked(hits[0].snippet)]


def test_title_matches_come_first_then_latest_message_match(user):
    older_title = chat(user, "Paris trip", "plans")
    by_message = chat(user, "Holiday", "We could go to Paris in May")
    newer_title = chat(user, "Paris again", "more plans")
    latest_message = chat(user, "Food", "Croissants in Paris")
    titles = found(user, "paris")
    assert titles == [newer_title.title, older_title.title, latest_message.title, by_message.title]


def test_a_title_match_shows_a_passage_when_its_messages_match_lately(user):
    for number in range(5):
        chat(user, f"Other {number}", f"Paris item {number}")
    recent = chat(user, "Paris trip", "first: Paris museums", "later: Paris food")
    old = chat(user, "Paris in spring", "nothing more")
    hits = search_conversations(user=user, query="paris", limit=3)
    assert [hit.conversation for hit in hits][:2] == [old, recent]
    assert hits[0].snippet == ()  # its messages do not hold the word: the title shows
    assert "".join(s.text for s in hits[1].snippet) == "later: Paris food"
    assert [hit.conversation.title for hit in hits][2] == "Other 4"


def test_a_one_letter_word_is_a_whole_word_not_a_prefix(user):
    chat(user, "Cluster", "We deploy on kubernetes")
    chat(user, "Question", "How do I start?")
    assert found(user, "k") == []
    assert found(user, "how do i") == ["Question"]
    assert found(user, "ku") == ["Cluster"]


def test_accented_words_are_found_and_marked(user):
    chat(user, "Café notes", "Le café crème à Paris")
    hit = search_conversations(user=user, query="café")[0]
    assert marked(hit.title) == ["Café"]
    assert marked(hit.snippet) == ["café"]


def test_marks_keep_their_place_around_letters_that_change_length_in_lower_case():
    from generation.search import Terms, mark_terms

    snippet = mark_terms("İstanbul ẞtraße: Kubernetes", Terms.parse("kube"))
    assert marked(snippet) == ["Kubernetes"]
    assert "".join(s.text for s in snippet) == "İstanbul ẞtraße: Kubernetes"


@on_sqlite
def test_sqlite_finds_accented_words_without_their_accents(user):
    chat(user, "Café notes", "Le café crème à Paris")
    hit = search_conversations(user=user, query="creme cafe")[0]
    assert marked(hit.snippet) == ["café", "crème"]
    assert marked(hit.title) == []  # "creme" is not in the title: only "cafe" would be


def test_a_conversation_appears_once_with_its_latest_matching_message(user):
    chat(user, "One", "apple one", "apple two", "apple three")
    hits = search_conversations(user=user, query="apple")
    assert len(hits) == 1
    assert "".join(s.text for s in hits[0].snippet) == "apple three"


def test_a_long_message_shows_a_passage_around_the_match(user):
    words = [f"word{n}" for n in range(400)]
    words[250] = "needle"
    chat(user, "Long", " ".join(words))
    snippet = search_conversations(user=user, query="needle")[0].snippet
    text = "".join(s.text for s in snippet)
    assert marked(snippet) == ["needle"]
    assert text.startswith("…")
    assert text.endswith("…")
    assert len(text) < 300


@on_sqlite
def test_the_index_is_repaired_when_a_table_rebuild_dropped_its_triggers(user):
    """Django rebuilds a SQLite table for most column changes, and the table's triggers go
    with it: every migrate puts them back and reindexes what was written meanwhile."""
    from generation.search_sqlite import TRIGGERS, missing_triggers, repair_index

    chat(user, "Before", "written with the triggers: albatross")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER generation_message_fts_insert")
        cursor.execute("DROP TRIGGER generation_conversation_fts_insert")
    chat(user, "Meanwhile", "written without them: pelican")
    assert found(user, "pelican") == []
    repair_index(using="default")
    assert missing_triggers(connection) == []
    assert found(user, "pelican") == ["Meanwhile"]
    assert found(user, "meanwhile") == ["Meanwhile"]
    assert found(user, "albatross") == ["Before"]
    assert len(TRIGGERS) == 7


@on_sqlite
def test_a_conversation_given_to_another_owner_moves_in_the_index(user, other_user):
    conversation = chat(user, "Handover", "the runbook for the pager")
    Conversation.objects.filter(pk=conversation.pk).update(owner=other_user)
    assert found(user, "runbook") == []
    assert found(user, "handover") == []
    assert found(other_user, "runbook") == ["Handover"]
    assert found(other_user, "handover") == ["Handover"]


@on_sqlite
def test_the_migration_installs_the_triggers_the_repair_knows():
    from generation.search_sqlite import TRIGGERS

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        installed = dict(cursor.fetchall())
    for name, sql in TRIGGERS.items():
        assert " ".join(installed[name].split()) == " ".join(sql.split()), name
    assert not _postgres_indexes_here()


def _postgres_indexes_here() -> bool:
    with connection.cursor() as cursor:
        tables = ["generation_message", "generation_conversation"]
        names = [
            name
            for table in tables
            for name in connection.introspection.get_constraints(cursor, table)
        ]
    return "generation_message_search" in names or "generation_conversation_search" in names


@pytest.mark.postgres
def test_postgres_has_its_indexes_and_no_fts_tables():
    assert _postgres_indexes_here()
    assert "generation_message_fts" not in connection.introspection.table_names()


@pytest.mark.postgres
def test_postgres_search_uses_the_gin_indexes(user):
    from generation.search import Terms
    from generation.search_postgres import MESSAGE_VECTOR, TITLE_VECTOR, ts_query, vector

    chat(user, "Cluster", "kubernetes pods")
    query = ts_query(Terms.parse("kubernetes po"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask for the index
        cursor.execute(
            f"EXPLAIN SELECT m.id FROM generation_message AS m WHERE {vector(MESSAGE_VECTOR)}"
            " @@ to_tsquery('simple', %s) AND m.status NOT IN ('pending', 'streaming')",
            [query],
        )
        message_plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            f"EXPLAIN SELECT c.id FROM generation_conversation AS c WHERE {vector(TITLE_VECTOR)}"
            " @@ to_tsquery('simple', %s)",
            [query],
        )
        title_plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "generation_message_search" in message_plan
    assert "generation_conversation_search" in title_plan
    assert found(user, "kubernetes po") == ["Cluster"]


# --- the view --------------------------------------------------------------------------


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_search_needs_a_login(client):
    response = client.get(reverse("generation:search"), {"q": "x"}, headers=HX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_htmx_gets_the_list_of_results(logged_in, user, other_user):
    mine = chat(user, "Kubernetes notes", "pods and nodes")
    chat(other_user, "Kubernetes theirs", "pods")
    response = logged_in.get(reverse("generation:search"), {"q": "kube"}, headers=HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert f'href="{reverse("generation:conversation", args=[mine.pk])}"' in body
    assert "<mark>Kubernetes</mark> notes" in body  # the whole word the prefix matched
    assert "theirs" not in body


def test_nothing_found_says_so(logged_in, user):
    response = logged_in.get(reverse("generation:search"), {"q": "zebra"}, headers=HX)
    assert "No chats match “zebra”." in response.content.decode()


def test_an_empty_search_answers_nothing_so_the_list_shows_again(logged_in, user):
    chat(user, "Anything", "at all")
    for q in ["", "   "]:
        response = logged_in.get(reverse("generation:search"), {"q": q}, headers=HX)
        assert response.status_code == 200
        assert response.content == b""


def test_text_is_escaped_and_only_matches_are_marked(logged_in, user):
    chat(
        user,
        "<b>Bold</b> title about kubernetes",
        '<script>alert(1)</script> kubernetes <mark>fake</mark> & "quotes"',
    )
    body = logged_in.get(reverse("generation:search"), {"q": "kubernetes"}, headers=HX)
    html = body.content.decode()
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>kubernetes</mark>" in html
    assert "&lt;mark&gt;fake&lt;/mark&gt; &amp; &quot;quotes&quot;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; title about <mark>kubernetes</mark>" in html
    assert html.count("<mark>") == 2


def test_a_too_long_search_is_refused_in_words(logged_in, user):
    response = logged_in.get(reverse("generation:search"), {"q": "x" * 201}, headers=HX)
    assert "Search for at most 200 characters." in response.content.decode()


def test_without_script_the_form_opens_a_page_of_results(logged_in, user):
    mine = chat(user, "Kubernetes notes", "pods and nodes")
    page = logged_in.get(reverse("generation:search"), {"q": "pods"}).content.decode()
    assert "<html" in page
    assert 'value="pods"' in page  # the box keeps the words
    assert f'href="{reverse("generation:conversation", args=[mine.pk])}"' in page
    assert "<mark>pods</mark> and nodes" in page
    assert 'id="conversation-list"' in page


def test_the_chat_page_has_the_search_box(logged_in):
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'hx-trigger="input changed delay:200ms, search"' in page
    assert f'action="{reverse("generation:search")}"' in page
    assert '<div id="search-results" class="search-results" aria-live="polite"></div>' in page
    assert "{#" not in page


# --- the sidebar in Chromium -----------------------------------------------------------


@pytest.fixture
def search_server() -> Iterator[str]:
    from tests.generation.test_browser import ChatServer

    server = ChatServer()
    server.start()
    yield server.url
    server.stop()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_typing_in_the_sidebar_finds_and_opens_a_chat(open_page, search_server, user, other_user):
    from tests.generation.test_browser import _log_in

    cluster = chat(
        user,
        "Cluster upgrade",
        "How do I drain a node?",
        "Run kubectl drain on the node; <script>kubernetes</script> then uncordon it.",
    )
    chat(user, "Bread", "Sourdough starter tips")
    chat(other_user, "Kubernetes secrets", "theirs only")
    page = open_page(search_server)
    _log_in(page, search_server)
    assert page.locator("#conversation-list .conversation").count() == 2
    screenshot(page, "search-before")

    page.fill("#search-form input[name=q]", "kube")
    page.wait_for_selector("#search-results .search-hit")
    assert page.locator("#search-results .search-hit").count() == 1  # not the other user's
    assert page.locator("#conversation-list").is_hidden()
    hit = page.locator(f"#search-hit-{cluster.pk}")
    assert hit.locator(".search-hit__title").inner_text() == "Cluster upgrade"
    assert hit.locator("mark").all_inner_texts() == ["kubectl", "kubernetes"]
    assert "<script>kubernetes</script>" in hit.locator(".search-hit__snippet").inner_text()
    screenshot(page, "search-results")

    page.fill("#search-form input[name=q]", "zebra")
    page.wait_for_selector("#search-results .search-results__message")
    assert "No chats match" in page.locator("#search-results").inner_text()
    page.fill("#search-form input[name=q]", "")
    page.wait_for_selector("#conversation-list", state="visible")
    assert page.locator("#search-results").is_hidden()

    page.fill("#search-form input[name=q]", "drain node")
    page.press("#search-form input[name=q]", "Enter")  # htmx answers it: the page stays
    page.wait_for_selector(f"#search-hit-{cluster.pk}")
    assert page.url == search_server + "/"
    page.click(f"#search-hit-{cluster.pk} a")
    page.wait_for_url(f"**/c/{cluster.pk}/")
    assert page.locator("#chat-title").inner_text() == "Cluster upgrade"
    assert (
        page.locator(".message--assistant .message__body")
        .inner_text()
        .startswith("Run kubectl drain")
    )
    screenshot(page, "search-opened")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_script_the_search_box_opens_a_page_of_results(open_page, search_server, user):
    from tests.generation.test_browser import _log_in

    cluster = chat(user, "Cluster upgrade", "Run kubectl drain on the node")
    chat(user, "Bread", "Sourdough starter tips")
    page = open_page(search_server, java_script_enabled=False)
    _log_in(page, search_server)
    page.fill("#search-form input[name=q]", "kubectl")
    page.press("#search-form input[name=q]", "Enter")
    page.wait_for_url("**/search/?q=kubectl")
    assert page.locator("main .search-hit").count() == 1
    assert page.locator("main .search-hit mark").all_inner_texts() == ["kubectl"]
    assert page.locator("#search-form input[name=q]").input_value() == "kubectl"
    screenshot(page, "search-page-without-script")
    page.click(f"main #search-hit-{cluster.pk} a")
    page.wait_for_url(f"**/c/{cluster.pk}/")
    assert page.locator("#chat-title").inner_text() == "Cluster upgrade"
