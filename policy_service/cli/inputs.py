"""File inputs of the command line, read as UTF-8 text: a file that is not is a clear error, not a traceback."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import click

from ..config import check_database_url
from ..contract.schemas import ascii_integer

# Every command's directory of rule files (--rules, and the deprecated DIRECTORY argument): one that does not exist
# is a usage error naming the option as typed (exit 2), on every command alike, before anything is read.
RULES_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
# An input a command reads (a CSV file; fixture files or directories): likewise a usage error when missing.
INPUT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
INPUT_PATH = click.Path(exists=True, path_type=Path)


def not_utf8(name: str, error: UnicodeDecodeError) -> click.ClickException:
    """The error for an input that is not UTF-8: which file, which byte, and what to do."""
    return click.ClickException(f"{name} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                                f"{error.start}); save it as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)")


def decode(data: bytes, name: str) -> str:
    """The bytes as text (UTF-8, a byte-order mark dropped); raises click.ClickException when they are not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise not_utf8(name, error) from None


def read_text(path: Path) -> str:
    """A file's text (UTF-8); raises click.ClickException naming the file when it is not UTF-8."""
    return decode(path.read_bytes(), str(path))


class TextFile(click.File):
    """A text file argument (or - for stdin), read whole as UTF-8 and given to the command as a text
    stream with the file's `name`; a file that is not UTF-8 is refused naming it."""

    name = "text file"

    def __init__(self) -> None:
        super().__init__("rb")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> io.StringIO:
        if isinstance(value, io.StringIO):
            return value
        handle = super().convert(value, param, ctx)
        name = "stdin" if value == "-" else click.format_filename(value)
        try:
            data = handle.read()
        finally:
            if value != "-":
                handle.close()
        text = io.StringIO(decode(data, name))
        text.name = name
        return text


class WabaId(click.ParamType):
    """A WhatsApp Business Account id (Meta's are 1 to 64 digits, contract.queries.WABA_ID): anything else is a
    usage error naming the option or argument (the service would answer 404, "no such account", for it)."""

    name = "WABA_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..contract.queries import WABA_ID

        if not WABA_ID.fullmatch(str(value)):
            self.fail("WABA ids are digits", param, ctx)
        return str(value)


class DatabaseUrl(click.ParamType):
    """A database URL, checked as the setting POLICY_DATABASE_URL is (config.check_database_url): anything else is a
    usage error naming --database-url (exit 2), where it was refused as POLICY_DATABASE_URL with exit 1."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_database_url(str(value))  # the setting's own rule: one rule for both
        except ValueError as error:
            self.fail(str(error), param, ctx)


class WholeRange(click.IntRange):
    """click.IntRange read as ASCII digits (contract.schemas.ascii_integer): click.INT read other scripts' digits
    (`--port １` was port 1); anything else is a usage error naming the option."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = ascii_integer(value.strip())
            except ValueError:
                self.fail(f"{value!r} is not a whole number in ASCII digits (0-9)", param, ctx)
        return super().convert(value, param, ctx)


class FiniteRange(click.FloatRange):
    """click.FloatRange that refuses nan (every comparison with it is false, so it passed any range: `--fail-under
    nan` never failed) and digits other than ASCII ones."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip().isascii():
            self.fail(f"{value!r} is not a number in ASCII digits", param, ctx)
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number
