"""Genie against the emulator with the official SDK (databricks-sdk 0.162.0, `w.genie`).

`start_conversation_and_wait` and `create_message_and_wait` poll `GET …/messages/{m}` until
COMPLETED (FAILED raises OperationFailed); the query result comes back as the same
StatementResponse the statements API returns. The default fixture's "Sales" space covers
main.sales.orders and main.default.products and is open to alice, bob and admins; bob cannot
read main.sales.orders, so his question about orders fails as a FAILED message.

The last tests drive databricks-ai-bridge 0.22.0's `Genie.ask_question` (fixed 0.5 s polls of the
message, then of the attachment's query-result), which turns the rows into a DataFrame by
`type_name` and reports a FAILED message as text.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from databricks.sdk.errors import NotFound, OperationFailed, PermissionDenied
from databricks.sdk.service.dashboards import GenieFeedbackRating, MessageStatus
from databricks.sdk.service.sql import StatementState

SALES = "01f0c0ffee5a1e5000000000000000a1"
TAXI = "01f0c0ffee5a1e5000000000000000b2"
WAIT = timedelta(seconds=60)


@pytest.fixture(autouse=True)
def quick_steps(control) -> None:
    """Short status steps: the SDK waiter sleeps 1 s, then 2 s, … between polls."""
    control.config(genie_step_ms=20)


def query_attachment(message):
    return next(a for a in message.attachments or [] if a.query is not None)


def test_a_question_is_answered_with_rows_through_the_attachment_query_result(pat_client):
    w = pat_client("alice")

    message = w.genie.start_conversation_and_wait(SALES, "What is the revenue by product?", timeout=WAIT)
    attachment = query_attachment(message)
    result = w.genie.get_message_attachment_query_result(
        SALES, message.conversation_id, message.message_id, attachment.attachment_id
    )

    assert message.status == MessageStatus.COMPLETED
    assert attachment.query.title == "Revenue by product"
    assert attachment.query.statement_id == result.statement_response.statement_id
    assert attachment.query.query_result_metadata.row_count > 0
    response = result.statement_response
    assert response.status.state == StatementState.SUCCEEDED
    assert [c.name for c in response.manifest.schema.columns] == ["product", "revenue"]
    assert len(response.result.data_array) == attachment.query.query_result_metadata.row_count
    texts = [a.text.content for a in message.attachments if a.text is not None]
    assert texts == ["Revenue per product, highest first."]


def test_a_follow_up_message_and_the_deprecated_result_route(pat_client):
    w = pat_client("alice")
    first = w.genie.start_conversation_and_wait(SALES, "What can you do?", timeout=WAIT)

    second = w.genie.create_message_and_wait(SALES, first.conversation_id, "List the products", timeout=WAIT)
    attachment = query_attachment(second)
    by_attachment = w.genie.get_message_query_result_by_attachment(
        SALES, second.conversation_id, second.message_id, attachment.attachment_id
    )
    messages = w.genie.list_conversation_messages(SALES, first.conversation_id)

    assert first.attachments[0].text.content.startswith("I can answer questions")
    assert second.status == MessageStatus.COMPLETED
    assert len(by_attachment.statement_response.result.data_array) == 8
    assert [m.message_id for m in messages.messages] == [first.message_id, second.message_id]


def test_bob_may_use_the_space_but_his_query_on_orders_fails(pat_client):
    w = pat_client("bob")

    with pytest.raises(OperationFailed) as failure:
        w.genie.start_conversation_and_wait(SALES, "How many orders are there?", timeout=WAIT)
    [conversation] = w.genie.list_conversations(SALES).conversations
    [message] = w.genie.list_conversation_messages(SALES, conversation.conversation_id).messages

    assert "FAILED" in str(failure.value)
    assert "INSUFFICIENT_PERMISSIONS" in message.error.error
    assert message.status == MessageStatus.FAILED
    assert message.error.type.value == "SQL_EXECUTION_EXCEPTION"
    with pytest.raises(PermissionDenied):
        w.genie.get_space(TAXI)


def test_spaces_and_conversations_are_listed_per_user(pat_client):
    alice, bob, admin = pat_client("alice"), pat_client("bob"), pat_client("admin")
    started = alice.genie.start_conversation_and_wait(SALES, "What can you do?", timeout=WAIT)

    alice_spaces = alice.genie.list_spaces()
    bob_spaces = bob.genie.list_spaces()
    first_page = alice.genie.list_spaces(page_size=1)
    second_page = alice.genie.list_spaces(page_size=1, page_token=first_page.next_page_token)
    space = alice.genie.get_space(SALES)
    bobs = bob.genie.list_conversations(SALES).conversations
    everyone = admin.genie.list_conversations(SALES, include_all=True).conversations

    assert [s.space_id for s in alice_spaces.spaces] == [SALES, TAXI]
    assert [s.space_id for s in bob_spaces.spaces] == [SALES]
    assert [s.space_id for s in first_page.spaces + second_page.spaces] == [SALES, TAXI]
    assert second_page.next_page_token is None
    assert space.title == "Sales" and space.warehouse_id == "dev-warehouse"
    assert not bobs
    assert [c.conversation_id for c in everyone] == [started.conversation_id]
    with pytest.raises(PermissionDenied):
        bob.genie.list_conversations(SALES, include_all=True)
    with pytest.raises(NotFound):
        bob.genie.get_message(SALES, started.conversation_id, started.message_id)


def test_feedback_and_delete(pat_client):
    w = pat_client("alice")
    message = w.genie.start_conversation_and_wait(SALES, "What can you do?", timeout=WAIT)

    w.genie.send_message_feedback(
        SALES, message.conversation_id, message.message_id, GenieFeedbackRating.POSITIVE, comment="thanks"
    )
    rated = w.genie.get_message(SALES, message.conversation_id, message.message_id)
    w.genie.delete_conversation(SALES, message.conversation_id)

    assert rated.feedback.rating == GenieFeedbackRating.POSITIVE
    assert rated.feedback.comment == "thanks"
    assert not w.genie.list_conversations(SALES).conversations
    with pytest.raises(NotFound):
        w.genie.get_message(SALES, message.conversation_id, message.message_id)


def poll(w, ids, until):
    """Polls `get_message` every 20 ms until its status is in `until` (the SDK waiter sleeps 1 s
    first, longer than this result lives)."""
    for _ in range(500):
        message = w.genie.get_message(*ids)
        if message.status in until:
            return message
        time.sleep(0.02)
    raise AssertionError(f"message stayed {message.status}")


def test_an_expired_result_is_run_again_with_execute_query(pat_client):
    # The fixture's rule expires the result 300 ms after COMPLETED.
    w = pat_client("alice")
    started = w.genie.start_conversation(SALES, "[expire result]").response
    ids = (SALES, started.conversation_id, started.message_id)
    completed = poll(w, ids, {MessageStatus.COMPLETED})
    attachment = query_attachment(completed)

    expired = poll(w, ids, {MessageStatus.QUERY_RESULT_EXPIRED})
    executed = w.genie.execute_message_attachment_query(*ids, attachment.attachment_id)
    rerun = poll(w, ids, {MessageStatus.COMPLETED})
    result = w.genie.get_message_attachment_query_result(*ids, attachment.attachment_id)

    assert expired.status == MessageStatus.QUERY_RESULT_EXPIRED
    assert executed.statement_response.statement_id != attachment.query.statement_id
    assert query_attachment(rerun).query.statement_id == executed.statement_response.statement_id
    assert result.statement_response.status.state == StatementState.SUCCEEDED
    time.sleep(0.5)
    assert w.genie.get_message(*ids).status == MessageStatus.COMPLETED


@pytest.fixture
def ai_bridge(monkeypatch, tmp_path):
    """databricks-ai-bridge's `Genie`, with MLflow (which it imports for tracing spans) kept to a
    temporary directory: no tracking server, nothing written into the repository."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from databricks_ai_bridge.genie import Genie

    return Genie


def test_the_ai_bridge_asks_a_question_and_gets_the_rows(pat_client, ai_bridge):
    w = pat_client("alice")
    genie = ai_bridge(SALES, client=w, return_pandas=True)

    answer = genie.ask_question("List the products")

    assert genie.description.startswith("Orders and products")
    frame = answer.result
    assert list(frame.columns) == ["id", "name", "price", "category"]
    assert len(frame) == 8
    assert frame["id"].tolist() == list(range(1, 9))  # INT columns become Python ints
    assert "SELECT id, name, price, category" in answer.query
    assert answer.description == "Every product with its price and category."
    assert answer.conversation_id


def test_the_ai_bridge_reports_a_failed_query_as_text(pat_client, ai_bridge):
    # The failure arrives as message status FAILED, the one path AIB parses (UPSTREAM-2 §1.4 rule 6).
    genie = ai_bridge(SALES, client=pat_client("bob"))

    answer = genie.ask_question("How many orders are there?")

    assert answer.result.startswith("Genie query failed with error:")
    assert "SQL_EXECUTION_EXCEPTION" in answer.result
