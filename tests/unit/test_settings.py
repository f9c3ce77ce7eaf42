import pytest
from pydantic import ValidationError

from replyflow.policy.service import create_app
from replyflow.settings import Settings


@pytest.mark.parametrize(("stages", "topics"), [
    ("screen,verify", {"comments.received", "replies.drafted"}),
    ("screen", {"comments.received"}),
    (" verify ", {"replies.drafted"}),
])
def test_policy_process_consumes_only_the_stages_it_is_told_to(stages, topics):
    app = create_app(Settings(policy_stages=stages))
    assert {t for s in app.broker.subscribers for t in s.topics} == topics


@pytest.mark.parametrize("stages", ["", "publish", "screen,publish", " , "])
def test_unknown_policy_stages_are_refused_with_the_setting_named(stages):
    with pytest.raises(ValidationError, match="POLICY_STAGES"):
        Settings(policy_stages=stages)


@pytest.mark.parametrize(("field", "value"), [
    ("otel_traces_exporter", "jaeger"), ("otel_traces_sampler_arg", 1.5), ("otel_traces_sampler_arg", -0.1),
])
def test_tracing_settings_outside_what_is_supported_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})
