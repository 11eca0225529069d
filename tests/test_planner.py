"""The delivery planner's rules, one by one, on literal inputs: no store, no Discord."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from core.models import Story, Subscription
from core.planner import (
    LIVE_WINDOW,
    Action,
    DeliveryState,
    EditReason,
    Limits,
    LivePost,
    Reason,
    Record,
    digest_due,
    explain,
    judge,
    plan_change,
    plan_channel,
    plan_digest,
    plan_edit,
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


# -- digests: collected, not posted --------------------------------------------------


def test_a_digest_subscription_collects_instead_of_posting():
    digest = sub(digest="daily")
    decision = judge(story(), [digest], NOW, LIMITS)
    assert decision.reason is Reason.IN_DIGEST and decision.action is Action.COLLECT
    assert decision.sentence() == "Not posted on its own: it goes into the daily digest (AI)."
    # Another subscription of the channel that posts each story still posts it.
    posting = dataclasses.replace(sub("Robotics"), id=2)
    both = judge(story(topics=("AI", "Robotics")), [digest, posting], NOW, LIMITS)
    assert both.reason is Reason.DUE and both.subscriptions == (posting,)


def test_digest_due_daily_at_its_hour_once():
    daily = sub(digest="daily", digest_hour=8, created_at=NOW - timedelta(days=3))
    at_seven = NOW.replace(hour=7)
    # Before 08:00 the latest period ended yesterday at 08:00.
    start, end = digest_due(daily, None, at_seven)
    assert end == at_seven.replace(hour=8) - timedelta(days=1)
    assert start == end - timedelta(days=1)
    eight = NOW.replace(hour=8)
    assert digest_due(daily, None, eight) == (eight - timedelta(days=1), eight)
    assert digest_due(daily, eight, eight + timedelta(hours=5)) is None  # already recorded
    # A first digest sent (by backfill) at 08:30: the next one starts there.
    assert digest_due(daily, eight + timedelta(minutes=30), eight + timedelta(days=1)) == (
        eight + timedelta(minutes=30),
        eight + timedelta(days=1),
    )
    # Down for three days: one digest covers the time since the last one.
    assert digest_due(daily, eight, eight + timedelta(days=3, hours=1)) == (
        eight,
        eight + timedelta(days=3),
    )


def test_digest_due_weekly_and_not_before_subscribing():
    # NOW is Thursday 1 January 2026, 12:00.
    weekly = sub(digest="weekly", digest_day=0, digest_hour=9)
    assert digest_due(weekly, None, NOW) == (
        datetime(2025, 12, 22, 9, tzinfo=UTC),
        datetime(2025, 12, 29, 9, tzinfo=UTC),
    )
    fresh = sub(digest="daily", digest_hour=12, created_at=NOW + timedelta(minutes=5))
    assert digest_due(fresh, None, NOW + timedelta(minutes=30)) is None
    assert digest_due(sub(), None, NOW) is None  # not a digest


def test_plan_digest_takes_the_hottest_collected_in_the_period():
    start, end = NOW - timedelta(days=1), NOW
    collected = [
        (story("Mild", heat=120), NOW - timedelta(hours=3)),
        (story("Blazing", heat=400), NOW - timedelta(hours=2)),
        (story("Before", heat=900), start),  # in the previous period
        (story("After", heat=900), NOW + timedelta(seconds=1)),  # in the next one
        (story("Warm", heat=250), NOW),
        (story("Tied", heat=120), NOW - timedelta(hours=5)),
    ]
    picked = plan_digest(collected, start, end, 3)
    assert [s.title for s in picked] == ["Blazing", "Warm", "Tied"]
    assert plan_digest(collected[2:4], start, end, 5) == []


# -- posts that stay current ---------------------------------------------------------


def live_post(heat=231, shown=154, coverage=0, posted_ago=timedelta(hours=2), **kw) -> LivePost:
    return LivePost(
        channel_id=20,
        message_id=30,
        story=story(heat=heat),
        coverage=coverage,
        posted_at=NOW - posted_ago,
        posted_heat=154,
        posted_coverage=0,
        shown_heat=shown,
        shown_coverage=0,
        **kw,
    )


def test_a_meaningful_heat_rise_edits():
    assert plan_edit(live_post(), NOW).reason is EditReason.HEAT_ROSE
    assert plan_edit(live_post(), NOW).due
    # +19 is below the 20 points; +20 on 154 is below 25 %.
    assert plan_edit(live_post(heat=119, shown=100), NOW).reason is EditReason.UNCHANGED
    assert plan_edit(live_post(heat=174), NOW).reason is EditReason.UNCHANGED
    assert plan_edit(live_post(heat=40, shown=10), NOW).reason is EditReason.HEAT_ROSE
    assert plan_edit(live_post(heat=100), NOW).reason is EditReason.UNCHANGED  # colder


def test_new_coverage_edits():
    assert plan_edit(live_post(heat=154, coverage=2), NOW).reason is EditReason.NEW_COVERAGE


def test_edits_are_hourly_within_the_window_and_only_when_live():
    soon = live_post(edited_at=NOW - timedelta(minutes=59))
    assert plan_edit(soon, NOW).reason is EditReason.TOO_SOON
    assert not plan_edit(soon, NOW).due
    just_posted = live_post(posted_ago=timedelta(minutes=30))
    assert plan_edit(just_posted, NOW).reason is EditReason.TOO_SOON
    old = live_post(posted_ago=LIVE_WINDOW + timedelta(seconds=1))
    assert plan_edit(old, NOW).reason is EditReason.PAST_WINDOW
    assert plan_edit(live_post(posted_ago=LIVE_WINDOW), NOW).due
    assert plan_edit(live_post(live=False), NOW).reason is EditReason.LIVE_OFF
    assert plan_edit(live_post(stopped=True), NOW).reason is EditReason.STOPPED
