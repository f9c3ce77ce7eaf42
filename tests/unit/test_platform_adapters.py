"""Reconciliation compares what a platform stored with what the publisher sent (the adapters themselves are
tested over HTTP against the simulator in tests/integration/test_publisher_platform.py)."""

from replyflow.publisher.platform import same_text


def test_same_text_ignores_how_the_platform_wraps_whitespace_but_not_words():
    ours = "Rest it an hour!\nThen bake hot. [AI reply]"
    assert same_text("Rest it an hour!\r\nThen bake hot. [AI reply] ", ours)
    assert same_text("Rest it an hour!  Then bake hot. [AI reply]", ours)
    assert not same_text("Rest it two hours! Then bake hot. [AI reply]", ours)
    assert not same_text("Rest it an hour! Then bake hot.", ours)
