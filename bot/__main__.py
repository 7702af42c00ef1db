"""``python -m bot`` and the ``archivist`` script.

The CLI is imported when it runs, not when this module is imported: a spawned worker (the PDF
parser) re-imports the script that started the process, and should not load Milvus,
onnxruntime and discord.py along with it.
"""


def main() -> None:
    """Run the ``archivist`` command line."""
    from bot.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
