FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

RUN useradd --create-home --uid 1000 planbeta
COPY . .
# Editable, so the code runs from /app next to templates/ and static/ (settings find them there).
RUN pip install --no-cache-dir -e . \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput

USER planbeta
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
