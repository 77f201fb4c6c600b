"""cli.inputs' number options: ASCII digits only, finite, in range; anything else a usage error naming the option."""

import pytest
from click.testing import CliRunner

from policy_service.cli import main


@pytest.mark.parametrize(("args", "option", "says"), [
    (["serve", "--port", "\uff11"], "--port", "not a whole number in ASCII digits"),
    (["serve", "--port", "\u0668\u0660\u0668\u0660"], "--port", "not a whole number in ASCII digits"),
    (["serve", "--port", "99999"], "--port", "not in the range"),
    (["webhooks", "process", "--limit", "\uff11"], "--limit", "not a whole number in ASCII digits"),
    (["webhooks", "process", "--limit", "9" * 30], "--limit", "not in the range"),
    (["test", "--fail-under", "nan"], "--fail-under", "is not a number"),
    (["test", "--fail-under", "\uff15\uff10"], "--fail-under", "not a number in ASCII digits"),
])
def test_a_number_option_takes_ascii_digits_and_a_finite_value(args, option, says):
    """click.INT read other scripts' digits (`--port １` was port 1, `--limit １` one payload) and FloatRange took nan,
    which every comparison passes (`--fail-under nan` never failed): each is exit 2 naming the option, before the
    command runs."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output and says in result.output, \
        result.output
