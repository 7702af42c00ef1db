"""``python -m bot`` and the ``archivist`` script.

The CLI is imported when it runs, not when this module is imported: a spawned worker (the PDF
parser) re-imports the script that started the process, and should not load Milvus,
onnxruntime and discord.py along with it.

gRPC's C core (under pymilvus) writes its own lines to stderr, around our logging: among them
a GOAWAY "too_many_pings" each time Milvus Lite's in-process server refuses pymilvus's
keep-alive pings, after a minute or two of quiet. Failures reach us as pymilvus exceptions, which
become sentences, so its output is off unless the operator sets ``GRPC_VERBOSITY`` (``ERROR``,
``INFO``, ``DEBUG``) and ``GRPC_TRACE`` themselves.
"""

import os


def main() -> None:
    """Run the ``archivist`` command line."""
    # Read once, when grpc is first imported: that is below, with the CLI.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from bot.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
