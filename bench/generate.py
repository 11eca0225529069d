"""Generate a realistic synthetic news archive for the benchmark.

    python bench/generate.py OUT_DIR --stories N [--seed S]

The distributions follow what the shared 192-story archive
(`corpus/power-apps/_news`) measures, scaled up where one small site cannot
show them:

- file size: corpus 1.1-2.0 kB, mean 1.48 kB -> same (mostly the `secured` blob)
- title words: 3-22, median 10 -> same; excerpt words: 1-59, median 36 -> same
- heat (= quality): p10 37, p50 72, p90 104, max 189 -> sampled from those deciles
- topics per story: 1: 73%, 2: 27%, 3: 0.5% -> 1: 70%, 2: 25%, 3: 5%
- topics: 7 (one site) -> 200, Zipf (s = 1.1)
- providers: 26, the top one 82% -> 400, one dominant (~35%), Zipf tail
- CRLF line endings 30%, `type: video` 6%, `published: false` 31% -> same
- `related:` coverage: none in the corpus (the seed has 9) -> 5% of stories, 1-9 links
- images / provider images 97% / 85%, webUrl / featuredContent 94% / 7% -> same

Titles and excerpts draw from a vocabulary of ~4,000 made-up words with a
Zipf distribution plus English stop words, so full-text search sees common
and rare terms the way it would on real text. Files are spread over
`_news/YYYY/MM/` folders. Output is deterministic for a given seed (file
contents and names; mtimes are whatever the file system sets).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta

# Heat quantiles of the shared corpus (heat equals quality there): p0, p10, …, p100.
HEAT_QUANTILES = (11, 37, 56, 64, 69, 72, 78, 87, 95, 104, 189)
START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_DAYS = 6 * 365

_STOP = "the of and to in a for on with is new how at from by as your are you that will its"
STOPWORDS = (_STOP + " this it an be more now can about what why").split()
# Syllables for the made-up vocabulary: pronounceable, diacritic-free, lower case.
ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr sk st tr".split()  # noqa: SIM905
VOWELS = "a e i o u ai ea io ou".split()  # noqa: SIM905
CODAS = ["", "", "", "", "n", "r", "s", "t", "l", "x", "nd", "rt", "ck"]

VOCAB_SIZE = 4_000
TOPIC_COUNT = 200
PROVIDER_COUNT = 400


def make_word(rng: random.Random, syllables: int) -> str:
    return "".join(
        rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)
    )


def build_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < size:
        word = make_word(rng, rng.choice((1, 1, 2, 2, 2, 3)))
        if len(word) > 2 and word not in STOPWORDS:
            words[word] = None
    return list(words)


def zipf_cumulative(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = rng = random.Random(seed)
        self.vocab = build_vocabulary(rng, VOCAB_SIZE)
        self.vocab_cum = zipf_cumulative(len(self.vocab), 1.0)
        names: dict[str, None] = {}
        while len(names) < TOPIC_COUNT:
            parts = [make_word(rng, rng.choice((2, 3))).capitalize()]
            if rng.random() < 0.6:
                parts.append(make_word(rng, 2).capitalize())
            names[" ".join(parts)] = None
        self.topics = list(names)
        self.topic_cum = zipf_cumulative(TOPIC_COUNT, 1.1)
        self.providers = []
        for i in range(PROVIDER_COUNT):
            name = make_word(rng, rng.choice((2, 3))).capitalize()
            if i % 3 == 1:
                name += " News"
            self.providers.append((name, f"{name.lower().replace(' ', '')}{i}.com"))
        # A dominant first provider (Microsoft holds 82% of the small corpus).
        weights = [1.0 / (rank**1.2) for rank in range(1, PROVIDER_COUNT + 1)]
        weights[0] = sum(weights[1:]) * 0.55
        self.provider_cum = list(itertools.accumulate(weights))

    # -- sampling ------------------------------------------------------------------

    def words(self, k: int) -> list[str]:
        rng = self.rng
        picks = rng.choices(self.vocab, cum_weights=self.vocab_cum, k=k)
        # About one word in five is a stop word, as in English headlines.
        return [rng.choice(STOPWORDS) if rng.random() < 0.2 else w for w in picks]

    def word_count(self, low: int, median: int, high: int) -> int:
        value = round(self.rng.triangular(low, high, median))
        return max(low, min(high, value))

    def heat(self) -> int:
        x = self.rng.random() * 10
        i = min(int(x), 9)
        lo, hi = HEAT_QUANTILES[i], HEAT_QUANTILES[i + 1]
        return round(lo + (hi - lo) * (x - i))

    def story_topics(self) -> list[str]:
        r = self.rng.random()
        k = 1 if r < 0.70 else 2 if r < 0.95 else 3
        chosen: dict[str, None] = {}
        while len(chosen) < k:
            chosen[
                self.topics[bisect.bisect(self.topic_cum, self.rng.random() * self.topic_cum[-1])]
            ] = None
        return list(chosen)

    def provider(self) -> tuple[str, str]:
        i = bisect.bisect(self.provider_cum, self.rng.random() * self.provider_cum[-1])
        return self.providers[min(i, PROVIDER_COUNT - 1)]

    # -- one story -------------------------------------------------------------

    def story(self, index: int, total: int) -> tuple[str, bytes]:
        rng = self.rng
        # Publish times grow with the index (an archive accumulates), with jitter.
        day = SPAN_DAYS * (index + rng.random()) / total
        moment = START + timedelta(days=day, minutes=rng.randrange(1440))
        stamp = moment.strftime("%Y-%m-%dT%H:%M:00Z")
        title_words = self.words(self.word_count(3, 8, 22))
        title = " ".join(title_words).capitalize()
        excerpt = " ".join(self.words(self.word_count(1, 40, 59))).capitalize()
        slug = "-".join(title_words[:8])
        pname, pdomain = self.provider()
        url = f"https://www.{pdomain}/{moment:%Y/%m}/{slug}-{index}"
        heat = self.heat()
        video = rng.random() < 0.06
        lines = [
            "---",
            "category: news",
            f'title: "{title}"',
            f'excerpt: "{excerpt}."',
            f"publishedDateTime: {stamp}",
            f'originalUrl: "{url}"',
        ]
        if rng.random() < 0.94:
            lines.append(f'webUrl: "{url}"')
        if rng.random() < 0.07:
            lines.append(
                'featuredContent: "<iframe width=\\"800\\" height=\\"500\\" '
                f'src=\\"https://www.youtube.com/embed/{index:011d}\\" allowfullscreen></iframe>"'
            )
        lines += [
            f"type: {'video' if video else 'article'}",
            f"quality: {heat}",
            f"heat: {heat}",
            f"published: {'false' if rng.random() < 0.31 else 'true'}",
            "",
            "provider:",
            f"  name: {pname}",
            f"  domain: {pdomain}",
        ]
        if rng.random() < 0.85:
            lines += [
                "  images:",
                f'    - url: "https://assets.example.org/organizations/{pdomain}-50x50.jpg"',
                "      width: 50",
                "      height: 50",
            ]
        lines += ["", "topics:"]
        lines += [f"  - {t}" for t in self.story_topics()]
        if rng.random() < 0.97:
            lines += [
                "",
                "images:",
                f'  - url: "https://www.{pdomain}/images/{moment:%Y/%m}/{index}.jpg"',
                f"    width: {rng.choice((640, 800, 1024, 1200, 1500))}",
                f"    height: {rng.choice((360, 450, 576, 630, 842))}",
                "    isCached: true",
            ]
        if rng.random() < 0.05:
            lines += ["", "related:"]
            for j in range(rng.randint(1, 9)):
                rp, rd = self.provider()
                rtitle = " ".join(self.words(self.word_count(4, 10, 18))).capitalize()
                rmoment = moment + timedelta(hours=rng.randrange(1, 120))
                lines += [
                    f'  - title: "{rtitle}"',
                    f'    excerpt: "{" ".join(self.words(self.word_count(8, 30, 50)))}."',
                    f"    publishedDateTime: {rmoment:%Y-%m-%dT%H:%M:00Z}",
                    f'    webUrl: "https://www.{rd}/story/{index}-{j}"',
                    "    type: article",
                    "    provider:",
                    f"      name: {rp}",
                    f"      domain: {rd}",
                    f"    quality: {self.heat()}",
                ]
        secured = base64.b64encode(rng.randbytes(300 if rng.random() < 0.9 else 420)).decode()
        lines += ["", f'secured: "{secured}"', "---", ""]
        newline = "\r\n" if rng.random() < 0.30 else "\n"
        name = f"_news/{moment:%Y/%m}/{moment:%Y-%m-%d}-{slug[:60]}-{index}.md"
        return name, newline.join(lines).encode()


def generate(out_dir: str, stories: int, seed: int = 1) -> float:
    """Write the archive; returns the seconds it took."""
    started = time.perf_counter()
    gen = Generator(seed)
    made: set[str] = set()
    for index in range(stories):
        name, data = gen.story(index, stories)
        path = os.path.join(out_dir, name)
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as fh:
            fh.write(data)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--stories", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if os.path.isdir(args.out_dir) and os.listdir(args.out_dir):
        print(f"{args.out_dir} is not empty; refusing to mix archives", file=sys.stderr)
        return 2
    seconds = generate(args.out_dir, args.stories, args.seed)
    print(f"wrote {args.stories:,} stories to {args.out_dir} in {seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
