"""Buttons and views shown under the bot's messages.

Per-story buttons are `DynamicItem`s whose custom_id carries the story id
(`news:related:ab12cd34`, `news:pin:ab12cd34`), so they keep working after a restart. The
paginator is a plain View bound to the person who asked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot import embeds, errors
from bot.autocomplete import STORY_REMOVED
from core.models import STORY_ID_PATTERN

if TYPE_CHECKING:
    from bot.app import NewsBot
    from core.models import Related, Story

log = logging.getLogger(__name__)

STORY_ID = f"(?P<story>{STORY_ID_PATTERN})"
PAGE_TIMEOUT = 600.0
NO_MENTIONS = discord.AllowedMentions.none()


class RelatedButton(discord.ui.DynamicItem[discord.ui.Button], template=f"news:related:{STORY_ID}"):
    """Shows the story's related coverage and similar stories, only to the clicker."""

    def __init__(self, story_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Related",
                emoji="🔗",
                style=discord.ButtonStyle.secondary,
                custom_id=f"news:related:{story_id}",
            )
        )
        self.story_id = story_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match) -> RelatedButton:
        return cls(match["story"])

    async def callback(  # type: ignore[override]  # discord.py: any client; ours: NewsBot
        self, interaction: discord.Interaction[NewsBot]
    ) -> None:
        # discord.py only logs a failing DynamicItem: answer the click ourselves.
        try:
            await self._show_related(interaction)
        except Exception as exc:
            await errors.on_component_error(interaction, exc, self.item)

    async def _show_related(self, interaction: discord.Interaction[NewsBot]) -> None:
        bot = interaction.client
        related = await bot.store.related(self.story_id)
        if related is None:
            await interaction.response.send_message(STORY_REMOVED, ephemeral=True)
            return
        await interaction.response.send_message(
            embed=embeds.related_embed(related, bot.config.hot_heat),
            view=related_view(related),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


class OpenSimilarSelect(
    discord.ui.DynamicItem[discord.ui.Select], template=f"news:similar:{STORY_ID}"
):
    """The menu under `/related`: choosing a similar story shows it, only to the chooser."""

    def __init__(self, story_id: str, options: list[discord.SelectOption] | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                placeholder="Open a similar story…",
                custom_id=f"news:similar:{story_id}",
                # After a restart the menu is rebuilt from its custom_id: the options are
                # on the message, the chosen id comes with the interaction.
                options=options or [discord.SelectOption(label="?", value=story_id)],
            )
        )
        self.story_id = story_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match) -> OpenSimilarSelect:
        return cls(match["story"])

    async def callback(  # type: ignore[override]  # discord.py: any client; ours: NewsBot
        self, interaction: discord.Interaction[NewsBot]
    ) -> None:
        try:
            await self._open(interaction)
        except Exception as exc:
            await errors.on_component_error(interaction, exc, self.item)

    async def _open(self, interaction: discord.Interaction[NewsBot]) -> None:
        bot = interaction.client
        values = self.item.values  # the chosen story's id, from this interaction
        story = await bot.store.story(values[0]) if values else None
        if story is None:
            await interaction.response.send_message(STORY_REMOVED, ephemeral=True)
            return
        pinned = await bot.store.is_story_pinned(interaction.guild_id, story.id)
        await interaction.response.send_message(
            embed=embeds.story_embed(story, bot.config.hot_heat, pinned=pinned),
            view=story_view(story, pinnable=False),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


def related_view(related: Related, base: discord.ui.View | None = None) -> discord.ui.View:
    """`base` (or an empty view) with a menu that opens one of the similar stories."""
    view = base or discord.ui.View(timeout=None)
    if related.similar:
        options = []
        for story in related.similar[: embeds.SELECT_OPTIONS_LIMIT]:
            label, description = embeds.related_choice(story)
            options.append(
                discord.SelectOption(label=label, value=story.id, description=description)
            )
        view.add_item(OpenSimilarSelect(related.story.id, options))
    return view


class PinButton(discord.ui.DynamicItem[discord.ui.Button], template=f"news:pin:{STORY_ID}"):
    """Pins the message it is on (moderators only); on a pinned message it says Unpin."""

    def __init__(self, story_id: str, pinned: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label="Unpin" if pinned else "Pin",
                emoji="📌",
                style=discord.ButtonStyle.secondary,
                custom_id=f"news:pin:{story_id}",
            )
        )
        self.story_id = story_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match) -> PinButton:
        return cls(match["story"], pinned=item.label == "Unpin")

    async def callback(  # type: ignore[override]  # discord.py: any client; ours: NewsBot
        self, interaction: discord.Interaction[NewsBot]
    ) -> None:
        try:  # the pin logic (and its clear refusals) lives in bot/pinning.py
            await interaction.client.pinner.toggle(interaction, self.story_id)
        except Exception as exc:
            await errors.on_component_error(interaction, exc, self.item)


def story_view(story: Story, *, pinned: bool = False, pinnable: bool = True) -> discord.ui.View:
    """The buttons under every story embed: Read (link), Related and Pin (Unpin if `pinned`).

    Without `pinnable` (an ephemeral message, which cannot be pinned) there is no Pin.
    """
    view = discord.ui.View(timeout=None)
    if url := embeds.safe_url(story.url, embeds.BUTTON_URL_LIMIT):
        view.add_item(discord.ui.Button(label="Read", emoji="📰", url=url))
    view.add_item(RelatedButton(story.id))
    if pinnable:
        view.add_item(PinButton(story.id, pinned))
    return view


PageRenderer = Callable[[int], Awaitable[tuple[discord.Embed, int]]]


class Paginator(discord.ui.View):
    """Previous / next buttons over pages that `render(offset)` produces.

    `render` returns the page's embed and the current total, so pages stay
    right while the archive changes underneath. Only `owner` may turn pages;
    after `PAGE_TIMEOUT` of inactivity the buttons are disabled.
    """

    def __init__(self, owner: discord.abc.User, render: PageRenderer, page_size: int, total: int):
        super().__init__(timeout=PAGE_TIMEOUT)
        self.owner = owner
        self.render = render
        self.page_size = page_size
        self.total = total
        self.offset = 0
        self.message: discord.Message | None = None
        self._update_buttons()

    @property
    def needed(self) -> bool:
        return self.total > self.page_size

    async def send(
        self, interaction: discord.Interaction, embed: discord.Embed, *, ephemeral: bool = False
    ) -> None:
        """Answer with the first page; the buttons only when there is more than one page."""
        await interaction.response.send_message(
            embed=embed,
            ephemeral=ephemeral,
            allowed_mentions=NO_MENTIONS,
            view=self if self.needed else discord.utils.MISSING,
        )
        if self.needed:
            self.message = await interaction.original_response()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner.id:
            return True
        await interaction.response.send_message(
            f"Only {self.owner.mention} can turn these pages. Run the command yourself to browse.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item
    ) -> None:
        await errors.on_component_error(interaction, error, item)

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.offset - self.page_size)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.primary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.offset + self.page_size)

    async def _show(self, interaction: discord.Interaction, offset: int) -> None:
        offset = max(0, offset)
        embed, self.total = await self.render(offset)
        self.offset = min(offset, max(0, (self.total - 1) // self.page_size * self.page_size))
        if self.offset != offset:  # the list shrank: show its last page instead
            embed, self.total = await self.render(self.offset)
        self._update_buttons()
        await interaction.response.edit_message(embed=embed, view=self)
        # Paging restarts the timeout, which may then fire after the first interaction's
        # token expired (15 min): disable the buttons through the channel instead.
        if interaction.message is not None:
            self.message = interaction.message

    def _update_buttons(self) -> None:
        self.previous.disabled = self.offset <= 0
        self.next.disabled = self.offset + self.page_size >= self.total

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException as exc:  # deleted, or the token expired
                log.debug("could not disable page buttons: %s", exc)


CONFIRM_TIMEOUT = 60.0


class Confirmation(discord.ui.View):
    """Confirm / Cancel for a destructive command; only the person who ran it can answer.

    `action` runs on Confirm and returns the message to show; the buttons are then
    disabled (also on Cancel and on timeout, which changes nothing).
    """

    def __init__(
        self, owner: discord.abc.User, action: Callable[[], Awaitable[str]], command: str
    ) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.owner = owner
        self.action = action
        self.command = command
        self.message: discord.Message | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner.id:
            return True
        await interaction.response.send_message(
            f"Only {self.owner.mention} can answer this; run {self.command} yourself.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item
    ) -> None:
        await errors.on_component_error(interaction, error, item)

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self._finish()
        outcome = await self.action()
        await interaction.response.edit_message(
            content=outcome, view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self._finish()
        await interaction.response.edit_message(
            content="Cancelled: nothing was removed.", view=self, allowed_mentions=NO_MENTIONS
        )

    def _finish(self) -> None:
        self.stop()
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    async def on_timeout(self) -> None:
        self._finish()
        if self.message is not None:
            try:
                await self.message.edit(content="Timed out: nothing was removed.", view=self)
            except discord.HTTPException as exc:  # deleted, or the token expired
                log.debug("could not disable confirmation buttons: %s", exc)
