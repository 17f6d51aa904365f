using System.Collections.Immutable;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Storage;

namespace Grains;

/// <summary>
/// A client's mailbox, keyed by id: the index to its digest, its durable queue and its live session.
/// A response for a live session that does not ask for acknowledgements is pushed first and
/// stored only when the push fails; otherwise it is stored first, so a reply to the sender always
/// means "on the socket" or "durably queued".
/// </summary>
public sealed partial class ClientIdGrain(
    [PersistentState("clientId", Names.Storage)] IPersistentState<ClientIdState> state,
    IOptions<ClientStoreOptions> options,
    TimeProvider time,
    LocalSessionObservers observers,
    ILogger<ClientIdGrain> logger) : Grain, IClientIdGrain
{
    private readonly ClientStoreOptions _options = options.Value;
    private ResponseQueue _queue = null!;
    private LiveSession? _session;

    // A session logged out because its token died; its frontend's renewals must not bring it back.
    private string? _revokedSessionId;

    // The session its frontend detached last: a renewal of it that was already on its way must not bring it back.
    private string? _detachedSessionId;

    // Responses pushed without acknowledgements whose removal storage refused: the next removal takes them too.
    private long _undeliveredRemovalUpTo;
    private long _nextSeq;

    /// <summary>
    /// True while the stored header still names a segment row that survived its delete: a new activation
    /// would read acknowledged responses back from it, so the header must be written before anything
    /// else is acknowledged, and at the latest when this activation ends.
    /// </summary>
    private bool _headerNamesRemovedRows;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var storage = ServiceProvider.GetRequiredKeyedService<IGrainStorage>(Names.Storage);
        _queue = new ResponseQueue(storage, this.GetGrainId(), _options.QueueSegmentSize);
        await _queue.LoadAsync(state.State);

        // Numbers up to SeqReserved may have gone out before this activation: start above them.
        _nextSeq = state.State.SeqReserved + 1;
    }

    public async Task Assign(string digest)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        if (state.State.Digest == digest)
        {
            return;
        }

        if (state.State.Digest is not null)
        {
            throw new InvalidOperationException($"Id {this.GetPrimaryKeyLong()} is already assigned.");
        }

        // The same write reserves this activation's first block of sequence numbers, so that the
        // first response to a new client costs no write of its own.
        var reserved = NextReservation();
        var now = time.GetUtcNow();

        // Only while expiry is on: the flag costs the first login a write, which a server without expiry need not pay.
        var expires = _options.ExpireNeverLoggedInAfter is not null;
        await WriteHeaderAsync(h =>
        {
            h.Digest = digest;
            h.SeqReserved = Math.Max(h.SeqReserved, reserved);
            h.RegisteredAt = now;
            h.AwaitingFirstLogin = expires;
        });
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_undeliveredRemovalUpTo > 0)
        {
            await RemoveDeliveredAsync(_undeliveredRemovalUpTo);
        }

        if (_headerNamesRemovedRows)
        {
            try
            {
                await WriteHeaderAsync(_ => { });
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The acknowledgement that left it so was answered with an error: the client acknowledges again.
                LogHeaderWriteFailed(logger, ex, this.GetPrimaryKeyLong());
            }
        }
    }

    public Task<string?> GetDigest() => Task.FromResult(state.State.Digest);

    public async Task Release(string digest)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        if (state.State.Digest == digest)
        {
            await WriteHeaderAsync(h => h.Digest = null);
        }
    }

    public async Task<SendResult> Send(int? from, string payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        if (state.State.Digest is null)
        {
            return new SendResult(SendStatus.NotFound, 0);
        }

        var bytes = ResponseQueue.PayloadBytes(payload);
        var live = Live();
        if (live is null || live.AckMode)
        {
            // Stored first: offline, or a session that keeps everything until it acknowledges.
            if (!_queue.HasRoomFor(from, bytes, _options))
            {
                return new SendResult(SendStatus.QueueFull, 0);
            }

            var stored = await NewResponseAsync(from, payload);
            await AppendAsync(stored);
            var pushed = live is not null && await FlushAsync(live);
            return new SendResult(pushed ? SendStatus.Online : SendStatus.Queued, stored.Seq);
        }

        // Default delivery to a live session: older undelivered responses and this one, in order.
        var item = await NewResponseAsync(from, payload);
        var batch = _queue.Count == 0
            ? [ResponseQueue.ToWire(item)]
            : Undelivered(live).Append(item).Select(ResponseQueue.ToWire).ToImmutableArray();
        if (await PushAsync(live, batch))
        {
            live.DeliveredUpTo = item.Seq;
            await RemoveDeliveredAsync(item.Seq - 1);
            return new SendResult(SendStatus.Online, item.Seq);
        }

        if (!_queue.HasRoomFor(from, bytes, _options))
        {
            return new SendResult(SendStatus.QueueFull, 0);
        }

        await AppendAsync(item);
        return new SendResult(SendStatus.Queued, item.Seq);
    }

    public async Task<ImmutableArray<PendingResponse>> Attach(SessionRegistration session, TimeSpan validFor)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (state.State.Digest is null)
        {
            throw new InvalidOperationException($"Id {this.GetPrimaryKeyLong()} is not registered.");
        }

        if (_session is { } previous && previous.Registration.SessionId != session.SessionId)
        {
            await TellLoggedOutAsync(previous, "takeover");
        }

        if (state.State.AwaitingFirstLogin)
        {
            // Written before the session attaches, so the expiry sweep never deletes a client that has
            // logged in; the same write reserves the session's sequence numbers.
            var reserved = NextReservation();
            await WriteHeaderAsync(h =>
            {
                h.AwaitingFirstLogin = false;
                h.SeqReserved = Math.Max(h.SeqReserved, reserved);
            });
        }

        if (_nextSeq > state.State.SeqReserved)
        {
            // A session is about to receive responses: reserve their numbers now, so that pushes to it
            // never wait for a write. A storage failure here costs the login nothing: the first
            // response reserves them instead.
            try
            {
                await ReserveSeqsAsync();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogReserveFailed(logger, ex, this.GetPrimaryKeyLong());
            }
        }

        var queued = _queue.Items.Select(ResponseQueue.ToWire).ToImmutableArray();
        _detachedSessionId = null;
        _session = new LiveSession(session, time.GetUtcNow() + validFor)
        {
            DeliveredUpTo = queued.IsEmpty ? state.State.Head - 1 : queued[^1].Seq,
        };
        return queued;
    }

    public async Task<bool> Renew(SessionRegistration session, TimeSpan validFor, long deliveredUpTo)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (state.State.Digest is null || session.SessionId == _revokedSessionId)
        {
            return false;
        }

        if (_session is null && session.SessionId == _detachedSessionId)
        {
            // Logged out or closed on its frontend, which read the login just before: nothing to renew.
            return true;
        }

        if (_session is null)
        {
            // This activation is new: take the session back and push whatever waited in the meantime.
            // (A session given up after a failed push is still here, and resumes below.) What the earlier
            // activation pushed died with it, but the session's frontend knows: the push resumes behind
            // that, or every response still waiting for its acknowledgement would come to the socket a
            // second time, after later ones. A mark above every number handed out so far is no mark (this
            // activation reserved above all of them), so that nothing new is held back by it.
            var had = Math.Min(deliveredUpTo, _nextSeq - 1);
            _session = new LiveSession(session, default) { DeliveredUpTo = Math.Max(state.State.Head - 1, had) };
        }
        else if (_session.Registration.SessionId != session.SessionId)
        {
            return false;
        }

        _session.ValidUntil = time.GetUtcNow() + validFor;
        await FlushAsync(_session);
        return true;
    }

    public async Task<bool> Acknowledge(string sessionId, long upTo)
    {
        if (_session is not { } live || live.Registration.SessionId != sessionId)
        {
            return false;
        }

        await RemoveUpToAsync(Math.Min(upTo, live.DeliveredUpTo));
        return true;
    }

    public Task Detach(string sessionId)
    {
        if (_session?.Registration.SessionId == sessionId)
        {
            _session = null;
            _detachedSessionId = sessionId;
        }

        return Task.CompletedTask;
    }

    public Task<MailboxStatus> Status() =>
        Task.FromResult(new MailboxStatus(state.State.Digest is not null, Live() is not null, _queue.Count, _queue.Bytes));

    public async Task Delete(string digest)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        if (state.State.Digest != digest)
        {
            return;
        }

        if (_session is { } live)
        {
            await TellLoggedOutAsync(live, "deleted");
            _session = null;
        }

        // The header goes first: from then on the id is unknown, whatever happens to the segments.
        await state.ClearStateAsync();
        _headerNamesRemovedRows = false;
        await _queue.DeleteAllAsync(ex => LogSegmentDeleteFailed(logger, ex, this.GetPrimaryKeyLong()));
        DeactivateOnIdle();
    }

    public Task<SendResult> SendFromClient(int from, string payload, bool contactsOnly) =>
        contactsOnly && state.State.Digest is not null && !state.State.Contacts.Contains(from)
            ? Task.FromResult(new SendResult(SendStatus.NotFound, 0))
            : Send(from, payload);

    public async Task<ContactChange> AddContact(int other)
    {
        if (state.State.Digest is null)
        {
            return ContactChange.NotFound;
        }

        if (state.State.Contacts.Contains(other))
        {
            return ContactChange.Done;
        }

        if (state.State.Contacts.Count >= _options.MaxContacts)
        {
            return ContactChange.TooMany;
        }

        await WriteHeaderAsync(h => h.Contacts.Add(other));
        return ContactChange.Done;
    }

    public async Task<ContactChange> RemoveContact(int other)
    {
        if (state.State.Digest is null)
        {
            return ContactChange.NotFound;
        }

        if (state.State.Contacts.Contains(other))
        {
            await WriteHeaderAsync(h => h.Contacts.Remove(other));
        }

        return ContactChange.Done;
    }

    public Task<ImmutableArray<int>?> Contacts() =>
        Task.FromResult<ImmutableArray<int>?>(state.State.Digest is null ? null : [.. state.State.Contacts.Order()]);

    public async Task<bool> MoveDigest(string from, string to, string? keepSessionId)
    {
        ArgumentException.ThrowIfNullOrEmpty(from);
        ArgumentException.ThrowIfNullOrEmpty(to);
        if (state.State.Digest != from)
        {
            return state.State.Digest == to;
        }

        // This one write is the move: before it the old token is the client's, after it the new one.
        await WriteHeaderAsync(h => h.Digest = to);
        if (_session is { } live && live.Registration.SessionId != keepSessionId)
        {
            _revokedSessionId = live.Registration.SessionId;
            await TellLoggedOutAsync(live, "revoked");
            _session = null;
        }

        return true;
    }

    public async Task<bool> Kick()
    {
        if (_session is not { } live)
        {
            return false;
        }

        // As after a detach: a renewal of this session already on its way must not bring it back.
        _session = null;
        _detachedSessionId = live.Registration.SessionId;
        await TellLoggedOutAsync(live, "kicked");
        return true;
    }

    public Task<ImmutableArray<PendingResponse>?> PeekQueue(long after, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return Task.FromResult<ImmutableArray<PendingResponse>?>(state.State.Digest is null
            ? null
            : [.. _queue.Items.Where(i => i.Seq > after).Take(limit).Select(ResponseQueue.ToWire)]);
    }

    public async Task<int?> Purge()
    {
        if (state.State.Digest is null)
        {
            return null;
        }

        var count = _queue.Count;
        if (_queue.Items.LastOrDefault() is { } newest)
        {
            await RemoveUpToAsync(newest.Seq);
        }

        return count;
    }

    public Task<RegistrationInfo> Registration() =>
        Task.FromResult(new RegistrationInfo(state.State.Digest, state.State.RegisteredAt, state.State.AwaitingFirstLogin));

    public async Task<bool> ExpireUnused(string digest, DateTimeOffset registeredBefore)
    {
        // Checked in the same turn as the deletion: a login (Attach) cannot slip in between.
        if (state.State.Digest != digest || !state.State.AwaitingFirstLogin
            || state.State.RegisteredAt is not { } registeredAt || registeredAt > registeredBefore)
        {
            return false;
        }

        await Delete(digest);
        return true;
    }

    private LiveSession? Live() => _session is { } s && s.ValidUntil > time.GetUtcNow() ? s : null;

    private IEnumerable<StoredResponse> Undelivered(LiveSession session) =>
        _queue.Items.Where(i => i.Seq > session.DeliveredUpTo);

    /// <summary>Pushes what the live session has not had yet; true when nothing is left undelivered.</summary>
    private async Task<bool> FlushAsync(LiveSession session)
    {
        var batch = Undelivered(session).Select(ResponseQueue.ToWire).ToImmutableArray();
        if (batch.IsEmpty)
        {
            if (!session.AckMode && _queue.Items.FirstOrDefault() is { } oldest && oldest.Seq <= session.DeliveredUpTo)
            {
                // Responses the session had from an earlier activation, whose removal died with it: done.
                await RemoveDeliveredAsync(session.DeliveredUpTo);
            }

            return true;
        }

        if (!await PushAsync(session, batch))
        {
            return false;
        }

        session.DeliveredUpTo = batch[^1].Seq;
        if (!session.AckMode)
        {
            await RemoveDeliveredAsync(session.DeliveredUpTo);
        }

        return true;
    }

    /// <summary>Hands responses to the session's frontend; a session that cannot take them is not live until it renews.</summary>
    private async Task<bool> PushAsync(LiveSession session, ImmutableArray<PendingResponse> batch)
    {
        try
        {
            // The frontend answers within PushTimeout: written, or withdrawn so that it never will be.
            // Waiting less would take its "not yet" for "never" and store a response it may still
            // write (the duplicate); the longer bound here only covers a frontend that cannot answer
            // at all, the one case where a response may then come twice (its seq tells the copies apart).
            // The frontend of this process answers within PushTimeout by its own deadline, so its answer needs no
            // second bound (nor a timer per push).
            var observer = observers.For(session.Registration, out var local);
            var answer = observer.Deliver(session.Registration.SessionId, batch, _options.PushTimeout);
            if (await (local ? answer : answer.WaitAsync(_options.PushTimeout * 2)))
            {
                return true;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogPushFailed(logger, ex, this.GetPrimaryKeyLong(), session.Registration.SessionId);
        }

        // The session is given up until its frontend renews it, but not forgotten: what it has been
        // given stays known, so the renewal resumes behind it instead of pushing the whole queue again
        // (in ack mode, too, responses not yet acknowledged would otherwise come twice to one socket),
        // and an acknowledgement meanwhile still counts.
        session.ValidUntil = DateTimeOffset.MinValue;
        return false;
    }

    private async ValueTask<StoredResponse> NewResponseAsync(int? from, string payload) =>
        new() { Seq = await NextSeqAsync(), From = from, At = time.GetUtcNow(), Payload = payload };

    private async Task AppendAsync(StoredResponse item)
    {
        if (_queue.TailWithRoom() is not { } segment)
        {
            segment = state.State.NextSegment;
            await WriteHeaderAsync(h =>
            {
                h.Segments.Add(segment);
                h.NextSegment = segment + 1;
            });
        }

        await _queue.AppendAsync(segment, item);
    }

    /// <summary>
    /// Removes what a push without acknowledgements delivered. The push has succeeded, so a storage failure
    /// here fails no caller: the removal is remembered, and the next one (or the end of the activation)
    /// makes it, so that the responses do not come again at the next login.
    /// </summary>
    private async Task RemoveDeliveredAsync(long upTo)
    {
        try
        {
            await RemoveUpToAsync(upTo);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _undeliveredRemovalUpTo = Math.Max(_undeliveredRemovalUpTo, upTo);
            LogRemovalFailed(logger, ex, this.GetPrimaryKeyLong());
        }
    }

    /// <summary>Removes responses up to <paramref name="upTo"/>, and any delivered ones an earlier removal left.</summary>
    private async Task RemoveUpToAsync(long upTo)
    {
        await RemoveThroughAsync(Math.Max(upTo, _undeliveredRemovalUpTo));
        _undeliveredRemovalUpTo = 0;
    }

    /// <summary>Removes responses up to <paramref name="upTo"/>: the header's head moves, emptied segments go.</summary>
    private async Task RemoveThroughAsync(long upTo)
    {
        if (_headerNamesRemovedRows)
        {
            // An earlier removal is not durable yet (its caller heard an error): this one waits for it.
            await WriteHeaderAsync(_ => { });
        }

        // Pushed responses were never stored: with nothing stored up to there, there is nothing to write.
        if (_queue.Count == 0 || _queue.Items.FirstOrDefault() is not { } oldest || oldest.Seq > upTo)
        {
            return;
        }

        var emptied = _queue.SegmentsEmptiedBy(upTo);
        if (emptied.Count < _queue.SegmentCount)
        {
            // A segment keeps responses on both sides of the cut: only the header's head says which are gone.
            await WriteHeaderAsync(h =>
            {
                h.Head = upTo + 1;
                h.Segments.RemoveAll(emptied.Contains);
            });
        }
        else
        {
            // The whole queue goes: deleting its segments says it all. The header learns it at its next
            // write; until then it names segments that are no longer there, which read as empty.
            state.State.Head = upTo + 1;
            state.State.Segments.RemoveAll(emptied.Contains);
            if (!await _queue.RemoveAsync(upTo, emptied, ex => LogSegmentDeleteFailed(logger, ex, this.GetPrimaryKeyLong())))
            {
                // A row survived its delete and the stored header still names it, with its old head: written
                // now, the header stops naming it. If storage refuses that too, the caller hears the error,
                // and the flag makes the next removal (a retried acknowledgement) or the deactivation write it.
                _headerNamesRemovedRows = true;
                await WriteHeaderAsync(_ => { });
            }

            return;
        }

        // The header no longer names the emptied segments: a row that survives its delete is never read again.
        await _queue.RemoveAsync(upTo, emptied, ex => LogSegmentDeleteFailed(logger, ex, this.GetPrimaryKeyLong()));
    }

    private async ValueTask<long> NextSeqAsync()
    {
        if (_nextSeq > state.State.SeqReserved)
        {
            await ReserveSeqsAsync();
        }

        return _nextSeq++;
    }

    /// <summary>Writes the upper bound of the next block of sequence numbers this activation may hand out.</summary>
    private Task ReserveSeqsAsync()
    {
        var reserved = NextReservation();
        return WriteHeaderAsync(h => h.SeqReserved = reserved);
    }

    private long NextReservation() => _nextSeq - 1 + _options.SeqBlockSize;

    /// <summary>Changes and writes the header, or leaves the previous header in memory when storage refuses.</summary>
    private async Task WriteHeaderAsync(Action<ClientIdState> change)
    {
        var previous = state.State.Copy();
        change(state.State);
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State = previous;
            throw;
        }

        // Whatever the change, the write stored the whole header: it names only segments still in use.
        _headerNamesRemovedRows = false;
    }

    private async Task TellLoggedOutAsync(LiveSession session, string reason)
    {
        try
        {
            await observers.For(session.Registration).LoggedOut(session.Registration.SessionId, reason).WaitAsync(_options.PushTimeout);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A frontend that cannot be told learns it at its next renewal, which this grain refuses.
            LogPushFailed(logger, ex, this.GetPrimaryKeyLong(), session.Registration.SessionId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Push to client {ClientId} session {SessionId} failed; responses stay queued")]
    private static partial void LogPushFailed(ILogger logger, Exception exception, long clientId, string sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sequence numbers for client {ClientId} could not be reserved at login; the first response will try again")]
    private static partial void LogReserveFailed(ILogger logger, Exception exception, long clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An emptied queue segment of client {ClientId} could not be deleted; the header stops naming it")]
    private static partial void LogSegmentDeleteFailed(ILogger logger, Exception exception, long clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Responses pushed to client {ClientId} could not be removed from its queue; the next removal takes them")]
    private static partial void LogRemovalFailed(ILogger logger, Exception exception, long clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The queue header of client {ClientId} could not be written as its activation ended; the next removal writes it")]
    private static partial void LogHeaderWriteFailed(ILogger logger, Exception exception, long clientId);

    private sealed class LiveSession(SessionRegistration registration, DateTimeOffset validUntil)
    {
        public SessionRegistration Registration { get; } = registration;

        public bool AckMode => Registration.AckMode;

        public DateTimeOffset ValidUntil { get; set; } = validUntil;

        /// <summary>The highest sequence number this session has been given.</summary>
        public long DeliveredUpTo { get; set; }
    }
}
