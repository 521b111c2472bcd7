"""d2lcnn.exercises: one line per check; a hint at the first wrong answer, the worked answer at the
second; answer forms read the same way by every check."""

from __future__ import annotations

import pytest
from torch import nn

from d2lcnn import exercises


@pytest.fixture(autouse=True)
def fresh():
    exercises.reset()
    yield
    exercises.reset()


def verdict(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out       # one line
    return out


STAGE = nn.Sequential(nn.Conv2d(1, 6, 5), nn.AvgPool2d(2))


def test_check_output_shape_right_in_every_form(capsys):
    for answer in [(1, 6, 12, 12), [1, 6, 12, 12], "(1, 6, 12, 12)", "1, 6, 12, 12", "[1,6,12,12]"]:
        assert exercises.check_output_shape(answer, STAGE, (1, 1, 28, 28)), answer
        assert verdict(capsys).startswith("Right: (1, 1, 28, 28) -> (1, 6, 12, 12)")


def test_check_output_shape_hint_first_then_the_worked_answer(capsys):
    assert not exercises.check_output_shape((1, 6, 14, 14), STAGE, (1, 1, 28, 28))
    hint = verdict(capsys)
    assert hint.startswith("Not quite") and "height, width are not right" in hint
    assert "(in + 2*padding - kernel) // stride + 1" in hint and "Conv2d(1, 6, kernel_size=(5, 5)" in hint
    assert "(1, 6, 12, 12)" not in hint and "12" not in hint          # no answer in the hint
    assert not exercises.check_output_shape("(1, 6, 13, 13)", STAGE, (1, 1, 28, 28))   # edited, rerun
    worked = verdict(capsys)
    assert "the output is (1, 6, 12, 12)" in worked
    assert "Conv2d (1, 6, 24, 24) -> AvgPool2d (1, 6, 12, 12)" in worked
    assert exercises.check_output_shape((1, 6, 12, 12), STAGE, (1, 1, 28, 28))


def test_check_output_shape_without_the_batch_dimension(capsys):
    assert not exercises.check_output_shape((6, 12, 12), STAGE, (1, 1, 28, 28))
    out = verdict(capsys)
    assert "4 dimensions, (N, C, H, W), starting with the batch dimension" in out and "12, 12)" not in out


def test_check_output_shape_refuses_other_forms_without_counting_a_try(capsys):
    for answer in [12, "12", "twelve", (1.5, 6), True]:
        assert not exercises.check_output_shape(answer, STAGE, (1, 1, 28, 28))
        out = verdict(capsys)
        assert out.startswith("Not an answer yet") and "like (N, C, H, W)" in out and "12, 12" not in out
    assert not exercises.check_output_shape((1, 6, 14, 14), STAGE, (1, 1, 28, 28))
    assert "Hint:" in verdict(capsys)                                  # still the first real try
    assert not exercises.check_output_shape(None, STAGE, (1, 1, 28, 28))
    assert "Write your answer" in verdict(capsys)


def test_questions_are_counted_apart(capsys):
    assert not exercises.check_output_shape((1, 6, 14, 14), STAGE, (1, 1, 28, 28))
    assert not exercises.check_output_shape((1, 6, 13, 13), STAGE, (1, 1, 32, 32))   # another question
    assert "Hint:" in capsys.readouterr().out.splitlines()[1]
    assert not exercises.check_output_shape((1, 6, 1, 1), STAGE, (1, 1, 28, 28), question="q1")
    assert "Hint:" in verdict(capsys)                                  # named: a question of its own
    exercises.reset("q1")
    assert not exercises.check_output_shape((1, 6, 1, 1), STAGE, (1, 1, 28, 28), question="q1")
    assert "Hint:" in verdict(capsys)


def test_check_output_shape_with_a_hint_of_the_notebook(capsys):
    assert not exercises.check_output_shape((1, 6, 14, 14), STAGE, (1, 1, 28, 28), hint="look at the pool.")
    assert "Hint: look at the pool." in verdict(capsys)


def test_check_output_shape_worked_answer_of_a_block_that_concatenates(capsys):
    # A layer-by-layer chain would end at the last branch's 16 channels: the notebook says why 80.
    block = nn.Sequential(nn.Conv2d(8, 16, 1))
    assert not exercises.check_output_shape((1, 8, 5, 5), block, (1, 8, 5, 5), hint="add the branches.",
                                            because="the branches' channels add up")
    assert "Hint: add the branches." in verdict(capsys)
    assert not exercises.check_output_shape((1, 9, 5, 5), block, (1, 8, 5, 5), hint="add the branches.",
                                            because="the branches' channels add up")
    worked = verdict(capsys)
    assert "the output is (1, 16, 5, 5), because the branches' channels add up." in worked
    assert "Layer by layer" not in worked


def test_check_output_shape_when_the_input_does_not_fit(capsys):
    assert not exercises.check_output_shape((1, 6, 1, 1), nn.Conv2d(3, 6, 5), (1, 1, 28, 28))
    assert "does not fit" in verdict(capsys)


def test_check_params_two_steps(capsys):
    conv = nn.Conv2d(6, 16, 5)
    assert not exercises.check_params(2400, conv)
    hint = verdict(capsys)
    assert "is too few" in hint and "out_channels x (in_channels / groups)" in hint
    assert "Conv2d(6, 16, kernel_size=(5, 5)" in hint and "2,416" not in hint and "= 16" not in hint
    assert not exercises.check_params("2,500", conv)
    worked = verdict(capsys)
    assert "it has 2,416" in worked and "bias (16,) = 16" in worked and "weight (16, 6, 5, 5) = 2,400" in worked


def test_check_params_forms(capsys):
    conv = nn.Conv2d(6, 16, 5)
    for answer in [2416, "2,416", "2_416", " 2416 ", 2416.0]:
        assert exercises.check_params(answer, conv), answer
        assert verdict(capsys) == "Right: 2,416 parameters.\n"
    for answer in ["many", (16, 6, 5, 5), "(2, 416)", 2416.5]:
        assert not exercises.check_params(answer, conv)
        out = verdict(capsys)
        assert out.startswith("Not an answer yet") and "one whole number like 1234 or '1,234'" in out
    assert not exercises.check_params(None, conv)
    assert "Write your answer" in verdict(capsys)


def test_check_params_formulas_for_other_layers(capsys):
    assert not exercises.check_params(4, nn.BatchNorm2d(16))
    assert "running mean and variance are buffers" in verdict(capsys)
    assert not exercises.check_params(1, nn.MaxPool2d(2))
    assert "have no parameters" in verdict(capsys)
    assert not exercises.check_params(10, nn.Linear(6400, 4096))
    assert "in_features x out_features" in verdict(capsys)


def test_check_value_two_steps(capsys):
    assert exercises.check_value(5, 5)
    assert verdict(capsys) == "Right: 5.\n"
    assert exercises.check_value("5", 5)
    capsys.readouterr()
    assert not exercises.check_value(3, 5, because="two stacked 3x3 convolutions see 5x5",
                                     hint="each 3x3 layer adds 2 to the side.")
    assert verdict(capsys) == ("Not quite: 3 is too low. Hint: each 3x3 layer adds 2 to the side. "
                               f"{exercises.AGAIN}\n")
    assert not exercises.check_value(7, 5, because="two stacked 3x3 convolutions see 5x5")
    assert verdict(capsys) == "Not quite: you wrote 7; the answer is 5, because two stacked 3x3 convolutions see 5x5.\n"
    assert exercises.check_value(0.101, 0.1, tolerance=0.05)
    capsys.readouterr()
    assert not exercises.check_value("five", 5)
    assert verdict(capsys).startswith("Not an answer yet: the answer is a whole number")
    assert not exercises.check_value(None, 5)
    assert "Write your answer" in capsys.readouterr().out


# -- answers that are no answer: one line, never echoed whole, never counted (issue 26) ----------

NO_ANSWERS = {
    "10 MB of text": ("1" * 10_000_000, "10,000,000 characters long"),
    "10**400": (10 ** 400, "far too large"),
    "nan": (float("nan"), "is nan, not a number"),
    "'nan' typed": ("nan", "is nan, not a number"),
    "infinity": (float("inf"), "far too large"),
    "bytes": (b"(1,6,24,24)", "is bytes, not text"),
    "a million numbers": (tuple(range(1_000_000)), "(shortened)"),
}


@pytest.mark.parametrize("case", list(NO_ANSWERS))
def test_no_answer_is_refused_in_one_short_line_and_not_counted(case, capsys):
    answer, words = NO_ANSWERS[case]
    conv = nn.Conv2d(6, 16, 5)
    checks = [(lambda a: exercises.check_output_shape(a, STAGE, (1, 1, 28, 28)), (1, 6, 14, 14), "like (N, C, H, W)"),
              (lambda a: exercises.check_params(a, conv), 2400, "one whole number"),
              (lambda a: exercises.check_value(a, 5, hint="look."), 3, "a whole number"),
              (lambda a: exercises.check_receptive_field(a, STAGE, (1, 1, 28, 28)), 3, "one whole number of pixels")]
    for check, wrong, form in checks:
        assert not check(answer)
        out = verdict(capsys)
        assert out.startswith("Not an answer yet") and words in out and form in out, out
        assert len(out) < 400, f"{len(out)} characters: the answer was echoed back"
        assert not check(wrong)
        assert "Hint:" in verdict(capsys), "the refused answer counted as a try"
    assert not exercises.check_output_shape(answer, STAGE, (1, 1, 28, 28))
    assert "Not an answer yet" in verdict(capsys)
    assert exercises._wrong == {("shape", repr(STAGE), (1, 1, 28, 28)): [(1, 6, 14, 14)],
                                ("params", repr(conv)): [2400], ("value", "5", ""): [3.0],
                                ("field", repr(STAGE), (1, 1, 28, 28)): [3]}, "nothing else was recorded"


def test_bytes_are_not_read_as_character_codes(capsys):
    """b"(1,6,24,24)" iterates as 40, 49, 44, ...: it is refused, not taken for a 11-dimensional shape."""
    assert not exercises.check_output_shape(b"(1,6,24,24)", nn.Conv2d(1, 6, 5), (1, 1, 28, 28))
    out = verdict(capsys)
    assert "40, 49" not in out and "without the b prefix" in out


def test_the_same_wrong_answer_again_repeats_the_hint(capsys):
    """Running the cell unchanged is not a new try: the hint again, saying so; a new answer reveals."""
    for check, first, other in [(lambda a: exercises.check_output_shape(a, STAGE, (1, 1, 28, 28)),
                                 (1, 6, 14, 14), "(1, 6, 13, 13)"),
                                (lambda a: exercises.check_params(a, nn.Conv2d(6, 16, 5)), 2400, "2,500"),
                                (lambda a: exercises.check_value(a, 5, because="how", hint="look."), 3, "4"),
                                (lambda a: exercises.check_receptive_field(a, STAGE, (1, 1, 28, 28)), 3, 4)]:
        assert not check(first)
        assert exercises.AGAIN in verdict(capsys)
        for _ in range(2):
            assert not check(first)
            again = verdict(capsys)
            assert "Hint:" in again and exercises.SAME in again and "you wrote" not in again
        assert not check(other)
        assert "you wrote" in verdict(capsys), "a different wrong answer shows the worked answer"


def test_a_verdict_is_a_truth_value_that_a_notebook_does_not_echo(capsys):
    from IPython.core.formatters import DisplayFormatter

    right, wrong = exercises.check_value(5, 5), exercises.check_value(None, 5)
    capsys.readouterr()
    assert right and not wrong and right == True and wrong == False   # noqa: E712 (the comparison is the point)
    assert isinstance(right, exercises.Verdict)
    assert DisplayFormatter().format(right) == ({}, {}), "nothing under the message in a notebook"


def test_check_receptive_field_two_steps_from_the_real_layers(capsys):
    stack = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.ReLU(), nn.Conv2d(1, 1, 3, dilation=2))
    assert not exercises.check_receptive_field(7, stack, (1, 1, 32, 32))
    hint = verdict(capsys)
    assert "too narrow" in hint and "d*(k-1)+1" in hint and "9" not in hint
    assert not exercises.check_receptive_field("11", stack, (1, 1, 32, 32))
    worked = verdict(capsys)
    assert "one unit sees 9x9" in worked
    assert "Conv2d (kernel 3, dilation 2, stride 1) -> 5; Conv2d (kernel 3, dilation 2, stride 1) -> 9" in worked
    assert "ReLU" not in worked, "layers that do not change the field are left out"
    assert exercises.check_receptive_field(9, stack, (1, 1, 32, 32))
    assert exercises.check_receptive_field(3, nn.Conv2d(1, 1, 3), (1, 1, 8, 8)), "a bare layer works too"
