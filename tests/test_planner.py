"""The delivery planner's rules, one by one, on literal inputs: no store, no Discord."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from core.models import Story, Subscription
from core.planner import (
    Action,
    DeliveryState,
    Limits,
    Reason,
    Record,
    explain,
    judge,
    plan_change,
    plan_channel,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LIMITS = Limits(max_age_hours=72, posts_per_poll=2)


def story(title="Robots learn to cook", heat=150, hours_ago=1, topics=("AI",), **kw) -> Story:
    return Story(
        id=title[:8],
        url=f"https://news.example/{title}",
        title=title,
        heat=heat,
        topics=topics,
        published_at=NOW - timedelta(hours=hours_ago),
        **kw,
    )


def sub(topic="AI", min_heat=100, **kw) -> Subscription:
    return Subscription(id=1, guild_id=10, channel_id=20, topic=topic, min_heat=min_heat, **kw)


def test_a_hot_recent_story_of_the_topic_is_due():
    decision = judge(story(), [sub()], NOW, LIMITS)
    assert decision.reason is Reason.DUE and decision.action is Action.POST
    assert decision.subscriptions == (sub(),)


def test_no_subscription_of_the_topic():
    decision = judge(story(topics=("AI", "Robotics")), [sub("Gardening")], NOW, LIMITS)
    assert decision.reason is Reason.NOT_IN_TOPIC
    assert decision.sentence() == (
        "Not posted: no subscription of this channel covers its topics (AI, Robotics)."
    )


def test_topic_names_match_in_any_case():
    assert judge(story(), [sub("ai")], NOW, LIMITS).reason is Reason.DUE


def test_below_heat_says_both_numbers():
    decision = judge(story(heat=87), [sub("AI", 100)], NOW, LIMITS)
    assert decision.action is Action.SKIP
    assert decision.sentence() == "Not posted: heat 87 is below this subscription's 100 (AI)."


def test_older_than_max_age_and_undated():
    assert judge(story(hours_ago=73), [sub()], NOW, LIMITS).sentence() == (
        "Not posted: older than 72 h."
    )
    undated = dataclasses.replace(story(), published_at=None)
    assert judge(undated, [sub()], NOW, LIMITS).reason is Reason.TOO_OLD
    # No age limit: old and undated stories are due.
    assert judge(undated, [sub()], NOW, Limits(max_age_hours=0)).reason is Reason.DUE


def test_unpublished():
    decision = judge(story(published=False), [sub()], NOW, LIMITS)
    assert decision.reason is Reason.UNPUBLISHED


def test_keywords_all_or_any():
    needs_both = sub(keywords=("robots", "vision"))
    decision = judge(story("Robots learn to cook"), [needs_both], NOW, LIMITS)
    assert decision.sentence() == ("Not posted: keywords: needs all of 'robots', 'vision' (AI).")
    either = dataclasses.replace(needs_both, match_any=True)
    assert judge(story("Robots learn to cook"), [either], NOW, LIMITS).reason is Reason.DUE
    one = sub(keywords=("robots",))
    assert judge(story("Chips get faster"), [one], NOW, LIMITS).sentence() == (
        "Not posted: keywords: needs 'robots' (AI)."
    )


def test_excluded_names_the_word():
    decision = judge(story("Robots learn to cook"), [sub(exclude=("chips", "cook"))], NOW, LIMITS)
    assert decision.reason is Reason.EXCLUDED and decision.term == "cook"
    assert decision.sentence() == "Not posted: excluded by 'cook' (AI)."


def test_paused_by_staff_skips_and_a_missing_permission_waits():
    by_mod = judge(story(), [sub(paused_by=42)], NOW, LIMITS)
    assert by_mod.action is Action.SKIP
    assert by_mod.sentence() == "Not posted: paused by <@42> (AI)."
    by_bot = judge(story(), [sub(paused_reason="missing permission: Send Messages")], NOW, LIMITS)
    assert by_bot.reason is Reason.PAUSED_FOR_PERMISSION and by_bot.action is Action.WAIT
    assert "missing permission: Send Messages" in by_bot.sentence()


def test_a_missing_file_waits():
    decision = judge(story(), [sub()], NOW, LIMITS, removed=True)
    assert decision.reason is Reason.WAITING_FOR_FILE and decision.action is Action.WAIT


def test_one_willing_subscription_is_enough_and_all_willing_ones_get_it():
    cold = sub(min_heat=500)
    robots = dataclasses.replace(sub(keywords=("robots",)), id=2, mention_role_id=7)
    plain = dataclasses.replace(sub(), id=3, topic="Robotics")
    decision = judge(story(topics=("AI", "Robotics")), [cold, robots, plain], NOW, LIMITS)
    assert decision.reason is Reason.DUE
    assert {s.id for s in decision.subscriptions} == {2, 3}


def test_the_closest_refusal_is_given():
    cold = sub(min_heat=500)
    filtered = dataclasses.replace(sub(keywords=("vision",)), id=2)
    decision = judge(story(), [cold, filtered], NOW, LIMITS)
    assert decision.reason is Reason.MISSING_KEYWORDS


def test_plan_change_decides_per_subscription():
    warm, hot = sub(min_heat=100), sub(min_heat=200)
    decisions = plan_change(story(heat=120), [warm, hot], NOW, LIMITS)
    assert [(s, d.reason) for s, d in decisions] == [(warm, Reason.DUE), (hot, Reason.BELOW_HEAT)]


def test_plan_channel_posts_up_to_the_cap_and_queues_the_rest():
    stories = [(story(f"Story {n} robots"), False) for n in range(4)]
    stories.insert(1, (story("Stale story", hours_ago=100), False))
    decisions = plan_channel(stories, [sub()], NOW, LIMITS)
    assert [d.reason for d in decisions] == [
        Reason.DUE,
        Reason.TOO_OLD,
        Reason.DUE,
        Reason.WAITING_FOR_CAP,
        Reason.WAITING_FOR_CAP,
    ]
    assert decisions[3].sentence() == "Waiting: 2 posts per poll, it is next."
    assert decisions[4].sentence() == "Waiting: 2 posts per poll, 3 stories are ahead of it."


def test_explain_a_posted_story_with_its_link():
    record = Record(
        DeliveryState.SENT, guild_id=1, channel_id=2, message_id=3, at=NOW - timedelta(hours=3)
    )
    decision = explain(story(), [sub()], record, 0, NOW, LIMITS)
    assert decision.sentence() == "Posted 3 h ago: https://discord.com/channels/1/2/3"


def test_explain_seen_dropped_and_queued():
    seen = explain(story(), [sub()], Record(DeliveryState.SEEN), 0, NOW, LIMITS)
    assert seen.reason is Reason.SEEN
    dropped = Record(DeliveryState.DROPPED, error="older than 72 h.")
    assert explain(story(), [sub()], dropped, 0, NOW, LIMITS).sentence() == (
        "Not posted: older than 72 h."
    )
    pending = Record(DeliveryState.PENDING)
    assert explain(story(), [sub()], pending, 1, NOW, LIMITS).reason is Reason.DUE
    queued = explain(story(), [sub()], pending, 2, NOW, LIMITS)
    assert queued.sentence() == "Waiting: 2 posts per poll, it is next."
    # Not recorded: the live rules say why.
    assert explain(story(heat=10), [sub()], None, 0, NOW, LIMITS).reason is Reason.BELOW_HEAT


def test_states_are_the_strings_the_database_keeps():
    assert [s.value for s in DeliveryState] == ["seen", "pending", "sending", "sent", "dropped"]
    assert DeliveryState("sent") is DeliveryState.SENT and DeliveryState.SENT == "sent"


def test_sentences_escape_typed_text():
    decision = judge(story("Robots learn to cook"), [sub(exclude=("cook",))], NOW, LIMITS)
    assert decision.sentence(plain=str.upper) == "Not posted: excluded by 'COOK' (AI)."
