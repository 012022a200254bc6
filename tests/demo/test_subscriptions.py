"""The simulator's request decisions: pure, no socket."""

from __future__ import annotations

from networkpype.demo.subscriptions import INVALID_JSON, INVALID_REQUEST, Decision, decide


def test_subscribe_adds_only_new_topics_in_order() -> None:
    got = decide(
        '{"method":"SUBSCRIBE","params":["b@trade","a@trade","b@trade"],"id":1}', ["a@trade"], 5
    )
    assert got == Decision({"result": None, "id": 1}, subscribe=("b@trade",))


def test_cap_counts_what_is_already_subscribed() -> None:
    text = '{"method":"SUBSCRIBE","params":["a@trade","b@trade","c@trade"],"id":"x"}'
    assert decide(text, ["a@trade"], 3).subscribe == ("b@trade", "c@trade")
    rejected = decide(text, ["a@trade", "z@trade"], 3)
    assert rejected.subscribe == ()
    assert rejected.reply["id"] == "x"
    assert rejected.reply["error"]["code"] == INVALID_REQUEST
    assert rejected.reply["error"]["topics"] == ["b@trade", "c@trade"]


def test_unsubscribe_removes_only_what_is_subscribed() -> None:
    got = decide('{"method":"UNSUBSCRIBE","params":["a@trade","q@trade"]}', ["a@trade"], 5)
    assert got == Decision({"result": None, "id": None}, unsubscribe=("a@trade",))


def test_list_and_errors() -> None:
    assert decide('{"method":"LIST_SUBSCRIPTIONS","id":3}', ["a@trade"], 5).reply == {
        "result": ["a@trade"],
        "id": 3,
    }
    assert decide("PING", [], 5).reply["error"]["code"] == INVALID_JSON
    assert decide("[1]", [], 5).reply["error"]["code"] == INVALID_JSON
    bad_topic = decide('{"method":"SUBSCRIBE","params":["x@y"],"id":2}', [], 5)
    assert bad_topic.reply["error"]["topics"] == ["x@y"]
    assert bad_topic.subscribe == ()
    assert decide('{"method":"SUB","id":4}', [], 5).reply["error"]["code"] == INVALID_REQUEST
