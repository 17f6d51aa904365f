using System.Collections.Concurrent;
using System.Collections.Immutable;
using Grains.Interfaces;
using Orleans.Runtime;
using Tests.Infrastructure;

namespace Tests.Grains;

/// <summary>Send permission, quotas and token moves in the grains, on the shared cluster with the default settings.</summary>
[Collection(ClusterCollection.Name)]
public sealed class PermissionGrainTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    [Fact]
    public async Task OneSenderMayFillATenthOfAQueueAndBackEndsKeepTheirShare()
    {
        var (_, mailbox, _) = await RegisterAsync();

        // Default bound 1,000: a sender may queue 100, and clients together 900.
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(7, "1")).Status);
        }

        Assert.Equal(SendStatus.QueueFull, (await mailbox.Send(7, "1")).Status);
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);
        Assert.Equal(SendStatus.QueueFull, (await mailbox.Send(7, "1")).Status);

        for (var sender = 100; sender < 108; sender++)
        {
            for (var i = 0; i < 100; i++)
            {
                Assert.Equal(SendStatus.Queued, (await mailbox.Send(sender, "1")).Status);
            }
        }

        Assert.Equal(SendStatus.QueueFull, (await mailbox.Send(200, "1")).Status);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "1")).Status);
        }

        Assert.Equal(SendStatus.QueueFull, (await mailbox.Send(null, "1")).Status);
        Assert.Equal(1000, (await mailbox.Status()).QueueLength);
    }

    [Fact]
    public async Task ASendersQuotaFreesUpAsItsResponsesAreDelivered()
    {
        var (_, mailbox, _) = await RegisterAsync();
        for (var i = 0; i < 100; i++)
        {
            await mailbox.Send(7, "1");
        }

        var observer = new Observer();
        var session = new SessionRegistration("s-" + Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(observer), AckMode: true);
        var queue = await mailbox.Attach(session, TimeSpan.FromMinutes(5));
        Assert.True(await mailbox.Acknowledge(session.SessionId, queue[49].Seq));
        await mailbox.Detach(session.SessionId);

        Assert.Equal(SendStatus.Queued, (await mailbox.Send(7, "1")).Status);
    }

    [Fact]
    public async Task OnlyContactsGetThroughWhenSendsAreLimitedToThem()
    {
        var (_, mailbox, _) = await RegisterAsync();
        var (other, _, _) = await RegisterAsync();

        Assert.Equal(SendStatus.NotFound, (await mailbox.SendFromClient(other, "1", contactsOnly: true)).Status);
        Assert.Equal(SendStatus.Queued, (await mailbox.SendFromClient(other, "1", contactsOnly: false)).Status);
        Assert.Equal(ContactChange.Done, await mailbox.AddContact(other));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal(SendStatus.Queued, (await mailbox.SendFromClient(other, "2", contactsOnly: true)).Status);
        Assert.Equal([other], (await mailbox.Contacts())!.Value);
        Assert.Equal(ContactChange.Done, await mailbox.RemoveContact(other));
        Assert.Equal(SendStatus.NotFound, (await mailbox.SendFromClient(other, "3", contactsOnly: true)).Status);
        Assert.Equal(ContactChange.NotFound, await Grains.GetGrain<IClientIdGrain>(int.MaxValue - 1).AddContact(other));
        Assert.Null(await Grains.GetGrain<IClientIdGrain>(int.MaxValue - 1).Contacts());
    }

    [Fact]
    public async Task RotateMovesTheClientToTheNewKeyAndTheOldOneStopsAtOnce()
    {
        var (id, mailbox, oldDigest) = await RegisterAsync();
        await mailbox.Send(null, "\"kept\"");
        var newDigest = TokenDigest.Of(TokenDigest.NewToken());

        Assert.Equal(id, await Grains.GetGrain<IClientGrain>(oldDigest).Rotate(newDigest, keepSessionId: null, evenIfExpired: false));

        Assert.Null(await Grains.GetGrain<IClientGrain>(oldDigest).Get());
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(newDigest).Get())!.Id);
        Assert.Equal(newDigest, await mailbox.GetDigest());
        Assert.Equal(1, (await mailbox.Status()).QueueLength);
        Assert.Null(await Grains.GetGrain<IClientGrain>(oldDigest).Rotate(TokenDigest.Of(TokenDigest.NewToken()), null, evenIfExpired: false));
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);
        Assert.Null(await Grains.GetGrain<IClientGrain>(oldDigest).Get());
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(newDigest).Get())!.Id);
    }

    [Fact]
    public async Task AMoveCutShortBeforeTheIndexSwitchedLeavesOnlyTheOldTokenWorking()
    {
        var (id, _, oldDigest) = await RegisterAsync();
        var client = await Grains.GetGrain<IClientGrain>(oldDigest).Get();
        var newDigest = TokenDigest.Of(TokenDigest.NewToken());

        // The new record was written, then the move stopped: the index still names the old key.
        await Grains.GetGrain<IClientGrain>(newDigest).Adopt(client!, oldDigest);

        Assert.Null(await Grains.GetGrain<IClientGrain>(newDigest).Get());
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(oldDigest).Get())!.Id);

        // The leftover record settles on its next write and never comes back; a real rotation still works.
        await Grains.GetGrain<IClientGrain>(newDigest).ConfirmMove();
        Assert.Null(await Grains.GetGrain<IClientGrain>(newDigest).Get());
        var next = TokenDigest.Of(TokenDigest.NewToken());
        Assert.Equal(id, await Grains.GetGrain<IClientGrain>(oldDigest).Rotate(next, null, evenIfExpired: false));
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(next).Get())!.Id);
        Assert.Null(await Grains.GetGrain<IClientGrain>(newDigest).Get());
    }

    [Fact]
    public async Task RotateTellsAnotherLiveSessionRevokedAndKeepsTheOneNamed()
    {
        var (id, mailbox, oldDigest) = await RegisterAsync();
        var observer = new Observer();
        var session = new SessionRegistration("s-" + Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(observer), AckMode: false);
        await mailbox.Attach(session, TimeSpan.FromMinutes(5));

        var kept = TokenDigest.Of(TokenDigest.NewToken());
        await Grains.GetGrain<IClientGrain>(oldDigest).Rotate(kept, session.SessionId, evenIfExpired: false);
        Assert.Empty(observer.Told);
        Assert.Equal(SendStatus.Online, (await mailbox.Send(null, "1")).Status);

        await Grains.GetGrain<IClientGrain>(kept).Rotate(TokenDigest.Of(TokenDigest.NewToken()), keepSessionId: null, evenIfExpired: false);
        Assert.Equal([(session.SessionId, "revoked")], observer.Told);
        Assert.False(await mailbox.Renew(session, TimeSpan.FromMinutes(5), 0));
        Assert.Equal(SendStatus.Queued, (await mailbox.Send(null, "2")).Status);
        Assert.True(id > 0);
    }

    private async Task<(int Id, IClientIdGrain Mailbox, string Digest)> RegisterAsync()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var id = await Grains.GetGrain<IClientGrain>(digest).Register(new ClientInformation("{}", null, null));
        return (id, Grains.GetGrain<IClientIdGrain>(id), digest);
    }

    private sealed class Observer : ISessionObserver
    {
        private readonly ConcurrentQueue<(string, string)> _loggedOut = new();

        public IReadOnlyList<(string SessionId, string Reason)> Told => [.. _loggedOut];

        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) => Task.FromResult(true);

        Task ISessionObserver.LoggedOut(string sessionId, string reason)
        {
            _loggedOut.Enqueue((sessionId, reason));
            return Task.CompletedTask;
        }
    }
}
