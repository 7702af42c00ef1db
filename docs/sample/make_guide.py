"""Writes ``archivist-guide.pdf``, the sample the README's quick start loads.

A short user guide with an outline (bookmarks), so a search shows what Archivist does with a
real manual: passages that know their section, citations with pages. Run from the repository
root with the test extras installed (fpdf2): ``python docs/sample/make_guide.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

CHAPTERS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "1 Getting started",
        [
            (
                "1.1 What Archivist does",
                "Archivist is a bot for Discord and Slack that answers questions from your "
                "documents. Every channel has its own agent with a long-term memory: it "
                "remembers the conversation, keeps notes about the people it talks with, and "
                "searches the documents attached to the channel before it answers. Answers "
                "cite the document and the page they come from, so anyone can check them.",
            ),
            (
                "1.2 Installing",
                "Archivist needs Python 3.10 or newer. Create a virtual environment and install "
                "the package with pip; everything runs on your machine, with the state in a "
                "SQLite file and the passages in a Milvus Lite file under the data folder. No "
                "API key is needed to load and search documents. To let the agent answer in "
                "words, point it at any OpenAI-compatible chat endpoint, such as a local "
                "llama.cpp server.",
            ),
        ],
    ),
    (
        "2 Sources",
        [
            (
                "2.1 Loading a PDF",
                "A source is a named set of documents. Upload a PDF to a channel where the bot "
                "is, or use the /load command with a file or a link, and Archivist reads it page "
                "by page, cuts it into passages and stores them. A progress message shows how "
                "far the load has come. Scanned pages without a text layer cannot be searched: "
                "run OCR on them first. A file that is damaged, encrypted or too large is "
                "refused with a sentence that says why, and nothing of it is kept.",
            ),
            (
                "2.2 Attaching and detaching",
                "An agent searches only the sources attached to its channel. Use /attach with "
                "the name of a source to attach it, and /detach to remove it again; the passages "
                "stay in the library and other channels keep their attachments. /sources lists "
                "the sources of the workspace and which ones are attached here. Only workspace "
                "managers may load, attach, detach or delete sources.",
            ),
        ],
    ),
    (
        "3 Asking questions",
        [
            (
                "3.1 Mentioning the bot",
                "Mention the bot with your question, for example: @Archivist how do I rotate the "
                "logs? The answer appears while it is written and ends with its sources, such as "
                "archivist-guide.pdf p.3. Questions in one channel are answered in order; "
                "different channels are answered at the same time.",
            ),
            (
                "3.2 Searching without the model",
                "The /search command returns the best passages of the attached sources at once, "
                "without asking the language model. It is also what you get when no model is "
                "configured, or when the model cannot be reached: the reply then says so.",
            ),
        ],
    ),
    (
        "4 Troubleshooting",
        [
            (
                "4.1 The bot does not answer",
                "Check that the bot has the Message Content intent on Discord, or the "
                "app_mentions:read scope on Slack. The /healthz address of a running bot says "
                "which dependency is down: the database, Milvus, the language model or a chat "
                "platform.",
            ),
            (
                "4.2 Resetting a conversation",
                "The /reset command makes the channel's agent forget the conversation after you "
                "confirm; its core memory and the attached sources stay. Nothing is deleted from "
                "the documents themselves.",
            ),
        ],
    ),
]


def main() -> None:
    pdf = FPDF(format="A5")
    pdf.set_creation_date(datetime(2026, 12, 1, tzinfo=timezone.utc))
    pdf.set_title("Archivist user guide")
    pdf.set_auto_page_break(auto=True, margin=15)
    for chapter, sections in CHAPTERS:
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.start_section(chapter, level=0)
        pdf.multi_cell(0, 8, chapter, new_x="LMARGIN", new_y="NEXT")
        for title, body in sections:
            pdf.set_font("Helvetica", style="B", size=11)
            pdf.start_section(title, level=1)
            pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=10)
            pdf.multi_cell(0, 5, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(Path(__file__).with_name("archivist-guide.pdf")))


if __name__ == "__main__":
    main()
