import logging
import traceback

from core.error_text import SafeFormatter, safe_traceback, without_diagnostics


class Refused(Exception):
    pass


def _chained() -> BaseException:
    try:
        try:
            raise KeyError("lead")
        except KeyError:
            raise ValueError("while looking the lead up") from None
    except ValueError as inner:
        try:
            raise Refused("the lead was refused") from inner
        except Refused:
            try:
                raise RuntimeError()
            except RuntimeError as last:
                return last
    raise AssertionError("unreachable")


def test_a_traceback_without_database_errors_is_the_one_python_prints():
    exc = _chained()
    assert safe_traceback(exc) == "".join(traceback.format_exception(exc))


def test_diagnostics_are_cut_with_everything_after_them_even_across_lines():
    text = (
        'new row for relation "payments_student" violates check constraint "x"\n'
        "DETAIL:  Failing row contains (7, Priya Raman, a note\nover two lines, +919847012345)."
    )
    assert without_diagnostics(text) == (
        'new row for relation "payments_student" violates check constraint "x"'
    )
    assert without_diagnostics("HINT:  No function matches") == ""
    assert without_diagnostics("a DETAIL: inside a sentence stays") == (
        "a DETAIL: inside a sentence stays"
    )


def test_the_log_formatter_cuts_diagnostics_from_the_message_and_the_traceback():
    error = ValueError("refused\nCONTEXT:  SQL statement with Priya")
    try:
        raise RuntimeError("failed") from error
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "saving failed: %s", (error,), (type(exc), exc, None)
        )
    line = SafeFormatter("%(levelname)s %(message)s").format(record)
    assert line.startswith("ERROR saving failed: refused\n")
    assert "ValueError: refused" in line
    assert "Priya" not in line
