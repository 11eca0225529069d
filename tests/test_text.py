"""Archive text is cleaned once, at ingest: what every surface (Discord, CLI, JSON) shows."""

from __future__ import annotations

from core.text import clean_excerpt, clean_line, cut


def test_entities_are_decoded():
    assert clean_line("In Nov&#8217;19, &#8220;canvas&#8221; &amp; more", 100) == (
        "In Nov’19, “canvas” & more"
    )


def test_tags_are_stripped_and_scripts_dropped_with_their_content():
    text = 'Hello <b>world</b><script>alert("x")</script><iframe src="x"></iframe> again<br/>'
    assert clean_line(text, 100) == "Hello world again"
    # An entity-spelled tag is text the author wrote: it stays (embeds escape it).
    assert clean_line("use &lt;b&gt; for bold", 100) == "use <b> for bold"


def test_whitespace_runs_collapse():
    assert clean_line("  a \t\r\n b\u00a0\u00a0c  ", 100) == "a b c"
    assert clean_excerpt("One\r\n\r\n\r\n  two   three\nfour", 100) == "One\n\ntwo three four"


def test_bullet_lists_stay_one_bullet_per_line():
    assert clean_excerpt("Features:\n- fast\n* small\n• kind", 100) == (
        "Features:\n• fast\n• small\n• kind"
    )
    assert clean_excerpt("<p>New:</p><ul><li>apps</li><li>flows</li></ul>", 100) == (
        "New:\n• apps\n• flows"
    )


def test_a_long_text_is_cut_at_a_word_boundary():
    text = "The quick brown fox jumps over the lazy dog " * 10
    short = cut(text.strip(), 50)
    assert short == "The quick brown fox jumps over the lazy dog The…"
    assert len(short) <= 50
    assert cut("short", 50) == "short"
    assert cut("x" * 80, 50) == "x" * 49 + "…"  # one long word: cut inside it
