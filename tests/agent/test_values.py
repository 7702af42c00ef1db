"""The value types both systems share: page labels, citations, citations grouped by document."""

from __future__ import annotations

from agent.values import Citation, by_document, page_label


def test_a_page_label_names_one_page_a_range_or_nothing() -> None:
    assert page_label(41, 41) == "p.41"
    assert page_label(41, 42) == "p.41-42"
    assert page_label(0, 0) == ""  # text without pages: an agent's notes


def test_a_citation_is_labelled_by_document_and_pages() -> None:
    assert Citation(1, "gri.pdf", 41, 41, "gri").label == "gri.pdf p.41"
    assert Citation(2, "gri.pdf", 43, 44, "gri").label == "gri.pdf p.43-44"
    assert Citation(3, "saved notes", 0, 0, "notes").label == "saved notes"


def test_citations_are_grouped_by_document_in_order_of_first_use() -> None:
    first = Citation(1, "gri.pdf", 41, 41, "gri")
    faq = Citation(2, "faq.pdf", 2, 2, "faq")
    later = Citation(3, "gri.pdf", 43, 44, "gri")
    assert by_document([first, faq, later]) == [("gri.pdf", [first, later]), ("faq.pdf", [faq])]


def test_each_page_range_is_kept_once_and_pageless_documents_keep_their_group() -> None:
    first = Citation(1, "gri.pdf", 41, 41, "gri")
    same_page = Citation(2, "gri.pdf", 41, 41, "gri")
    wider = Citation(3, "gri.pdf", 41, 42, "gri")
    note = Citation(4, "saved notes", 0, 0, "notes")
    assert by_document([first, same_page, wider, note, note]) == [
        ("gri.pdf", [first, wider]),
        ("saved notes", []),
    ]
    assert by_document([]) == []
