from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from replyflow.windowed import OffsetTracker

TP = TopicPartition("t", 0)


def test_commit_point_waits_for_the_lowest_unfinished_offset():
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started(TP, offset)
    tracker.finished(TP, 12)
    tracker.finished(TP, 11)
    assert tracker.commit_point(TP) == 10
    tracker.finished(TP, 10)
    assert tracker.commit_point(TP) == 13


def test_to_commit_reports_only_advances():
    tracker = OffsetTracker()
    tracker.started(TP, 0)
    tracker.finished(TP, 0)
    assert tracker.to_commit() == {TP: 1}
    tracker.committed({TP: 1})
    assert tracker.to_commit() == {}


def test_partitions_are_independent():
    other = TopicPartition("t", 1)
    tracker = OffsetTracker()
    tracker.started(TP, 5)
    tracker.started(other, 7)
    tracker.finished(other, 7)
    assert tracker.commit_point(TP) == 5
    assert tracker.commit_point(other) == 8


def test_forget_drops_revoked_partitions():
    tracker = OffsetTracker()
    tracker.started(TP, 1)
    tracker.forget({TP})
    assert tracker.commit_point(TP) is None
    assert tracker.to_commit() == {}


@given(st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=60, unique=True), st.data())
def test_never_commits_past_an_unfinished_offset(offsets, data):
    offsets.sort()
    tracker = OffsetTracker()
    for o in offsets:
        tracker.started(TP, o)
    finished = data.draw(st.lists(st.sampled_from(offsets), unique=True))
    for o in finished:
        tracker.finished(TP, o)
        point = tracker.commit_point(TP)
        unfinished = [x for x in offsets if x not in finished[: finished.index(o) + 1]]
        # Everything below the commit point is finished; the commit point itself is not.
        assert all(x >= point for x in unfinished)
        if unfinished:
            assert point == min(unfinished)
        else:
            assert point == offsets[-1] + 1
