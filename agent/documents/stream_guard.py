"""The decompression-bomb guard, the one job pypdf keeps: PDFium has no cap on inflation.

PDFium inflates every stream it needs in full (a 2 KB file that inflates to 256 MB costs it
512 MB), so before PDFium reads a file's text, :func:`check_streams` decodes with pypdf, under
output caps, every stream that text extraction makes PDFium inflate: each page's content
streams (together at most the cap), the form XObjects they draw, recursively, and the fonts
they use (font programs, ToUnicode maps, Type 3 glyph procedures). Images are left alone:
text extraction does not decode them. This costs ~0.4 CPU-s for a 1,151-page manual (pypdf's
text extraction took ~33).

The caps are pypdf's ``Configuration``, which pypdf 7 keeps in a ``ContextVar``: they are
applied for the duration of the call only, so nothing changes at import time or for other pypdf
users in the process. Writing the old module constants such as
``pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH`` is not an option in pypdf 7: every ``PdfReader`` then
raises ``DeprecationError``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pypdf import Configuration, PasswordType, PdfReader, apply_configuration, get_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError
from pypdf.filters import decode_stream_data
from pypdf.generic import ArrayObject, DictionaryObject, PdfObject, StreamObject

from agent.documents import pdf_refusals
from agent.documents.pypdf_logs import ROUTER, PypdfWarnings
from agent.errors import DocumentError

__all__ = ["check_streams"]

_log = logging.getLogger(__name__)

# Form XObjects drawing form XObjects: real files nest a few levels, a hostile one endlessly.
_MAX_FORM_DEPTH = 12
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def check_streams(data: bytes, name: str, max_stream_bytes: int) -> None:
    """Raise :class:`~agent.errors.DocumentTooLarge` if a stream that text extraction
    inflates expands past ``max_stream_bytes`` (a page's content streams count together).

    Raises:
        DocumentTooLarge, CorruptDocument, EncryptedDocument: as the messages of
            :mod:`agent.documents.pdf_refusals` say; a file pypdf cannot open at all is
            "damaged", since it could not be checked.
    """
    with _reading(name, max_stream_bytes):
        reader = PdfReader(io.BytesIO(data), strict=False)
        # Files with only an owner password (print/copy restrictions) open with the empty one.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise pdf_refusals.encrypted(name)
        _Walk(name, max_stream_bytes).pages(reader)


class _Walk:
    """Decodes each stream once, whichever pages share it."""

    def __init__(self, name: str, cap: int) -> None:
        self._name = name
        self._cap = cap
        self._seen: set[int] = set()  # fonts and forms walked
        self._sizes: dict[int, int] = {}

    def pages(self, reader: PdfReader) -> None:
        for page in reader.pages:
            contents = page.get("/Contents")
            parts = contents.get_object() if contents is not None else ArrayObject()
            if not isinstance(parts, ArrayObject):
                parts = ArrayObject([parts])
            # PDFium concatenates a page's content streams: cap their sum, not only each.
            if sum(self._size(part) for part in parts) > self._cap:
                raise pdf_refusals.expands(self._name, self._cap)
            self._resources(page.get("/Resources"), 0)

    def _size(self, ref: PdfObject | None) -> int:
        """Decoded size of the stream ``ref`` points to (0 if none), decoding it once."""
        stream = ref.get_object() if ref is not None else None
        if not isinstance(stream, StreamObject):
            return 0
        if id(stream) not in self._sizes:
            try:
                self._sizes[id(stream)] = len(decode_stream_data(stream))
            except (LimitReachedError, MemoryError):
                raise
            except Exception as exc:  # a filter pypdf lacks or bad data: PDFium decides
                _log.debug("a stream of %r was not decoded: %r", self._name, exc)
                self._sizes[id(stream)] = 0
        return self._sizes[id(stream)]

    def _resources(self, resources: PdfObject | None, depth: int) -> None:
        resources = resources.get_object() if resources is not None else None
        if not isinstance(resources, DictionaryObject) or depth > _MAX_FORM_DEPTH:
            return
        for xobject in _values(resources.get("/XObject")):
            form = xobject.get_object()
            if (
                isinstance(form, StreamObject)
                and form.get("/Subtype") == "/Form"
                and id(form) not in self._seen
            ):
                self._seen.add(id(form))
                self._size(form)
                self._resources(form.get("/Resources"), depth + 1)
        for font in _values(resources.get("/Font")):
            self._font(font.get_object(), depth)

    def _font(self, font: PdfObject | None, depth: int) -> None:
        if not isinstance(font, DictionaryObject) or id(font) in self._seen:
            return
        self._seen.add(id(font))
        self._size(font.get("/ToUnicode"))
        descriptor = font.get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else None
        if isinstance(descriptor, DictionaryObject):
            for key in _FONT_FILES:
                self._size(descriptor.get(key))
        descendants = font.get("/DescendantFonts")
        descendants = descendants.get_object() if descendants is not None else None
        if isinstance(descendants, ArrayObject):
            for descendant in descendants[:4]:
                self._font(descendant.get_object(), depth)
        # Type 3 glyphs are little content streams with resources of their own.
        for procedure in _values(font.get("/CharProcs")):
            self._size(procedure)
        if "/CharProcs" in font:
            self._resources(font.get("/Resources"), depth + 1)


def _values(mapping: PdfObject | None) -> list[PdfObject]:
    mapping = mapping.get_object() if mapping is not None else None
    return list(mapping.values()) if isinstance(mapping, DictionaryObject) else []


def _configuration(cap: int) -> Configuration:
    # Start from the current configuration so any caller-level pypdf settings survive.
    return get_configuration().with_overwrites(
        **{
            # Output caps of every decoder that can inflate data.
            "zlib_maximum_output_length": cap,
            "lzw_maximum_output_length": cap,
            "run_length_maximum_output_length": cap,
            "brotli_maximum_output_length": cap,
            "jbig2_maximum_output_length": cap,
            "image_maximum_buffer_size": cap,
            "array_based_stream_maximum_output_length": cap,
            # Bytes fed through a stream's filter chain; bounds stacked-filter CPU time.
            "stream_decoding_work_maximum_length": 4 * cap,
        }
    )


@contextmanager
def _reading(name: str, cap: int) -> Iterator[PypdfWarnings]:
    """Run pypdf work under the caps and turn whatever it raises into DocumentErrors."""
    state = PypdfWarnings()
    with apply_configuration(_configuration(cap)), ROUTER.capture(state):
        try:
            yield state
        except DocumentError:
            raise
        except LimitReachedError as exc:
            _log.info("%r hit a pypdf limit: %s", name, exc)
            raise pdf_refusals.limit_error(name, cap, exc) from exc
        except MemoryError as exc:
            _log.warning("%r exhausted memory while being read", name)
            raise pdf_refusals.out_of_memory(name) from exc
        except FileNotDecryptedError as exc:
            raise pdf_refusals.encrypted(name) from exc
        except DependencyError as exc:
            # AES needs the `cryptography` package; without it even an owner-only
            # protected file cannot be checked. The operator can fix this, the user can too.
            _log.warning(
                "cannot decrypt %r, is the 'cryptography' package installed? %s", name, exc
            )
            raise pdf_refusals.encrypted(name) from exc
        except Exception as exc:
            # Hostile or broken files make pypdf raise almost anything (KeyError,
            # struct.error, RecursionError, ...); to the user it is all "damaged".
            # Tracebacks only for exception types pypdf did not mean to raise.
            _log.info(
                "%r could not be parsed: %r", name, exc, exc_info=not isinstance(exc, PyPdfError)
            )
            raise pdf_refusals.corrupt(name) from exc
    if state.count:
        _log.info(
            "pypdf reported %d problem(s) in %r, first: %s", state.count, name, state.first[0]
        )
    if state.swallowed_limit is not None:
        raise pdf_refusals.limit_error(name, cap, state.swallowed_limit) from state.swallowed_limit
