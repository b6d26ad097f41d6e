FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

RUN useradd --create-home --uid 1000 planbeta
COPY . .
# Editable, so the code runs from /app next to templates/ and static/ (settings find them there).
RUN pip install --no-cache-dir -e . \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && install -d -o planbeta -g planbeta -m 0700 /var/lib/planbeta/audit-spool \
    && install -d -o planbeta -g planbeta -m 0700 /var/lib/planbeta/audit-archive

USER planbeta
EXPOSE 8000
ENV AUDIT_SPOOL_DIR=/var/lib/planbeta/audit-spool AUDIT_ARCHIVE_DIR=/var/lib/planbeta/audit-archive
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
