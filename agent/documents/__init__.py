"""Documents: parse, chunk and embed PDFs; the Milvus archive, the keyword index, the registry.

Nothing here knows about agents: the mind (``agent.mind``) uses documents, never the reverse.
"""
