using System.Collections.Immutable;
using Grains.Interfaces;
using Grains.Storage;
using Tests.Infrastructure;

namespace Tests.Faults;

/// <summary>
/// Acknowledged responses never come back: not after a failed delete of an emptied queue segment,
/// not after a failed write of the header either, whatever activation reads the mailbox next.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AcknowledgedResponsesTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Valid = TimeSpan.FromMinutes(5);

    private IGrainFactory Grains => fixture.Silos.Grains;

    private StorageFaults Faults => fixture.Silos.Faults;

    [Fact]
    public async Task AQueueEmptiedByAnAcknowledgementStaysEmptyWhenItsSegmentsCannotBeDeleted()
    {
        var mailbox = await RegisterAsync();
        long last = 0;
        for (var i = 0; i < 40; i++)
        {
            last = (await mailbox.Send(null, $"{i}")).Seq;
        }

        var session = Session();
        Assert.Equal(40, (await mailbox.Attach(session, Valid)).Length);
        var deletes = Faults.Add(new StorageFault { Operation = StorageOperation.Clear, GrainId = mailbox.GetGrainId(), StateNamePrefix = "queue.", Times = 100 });

        Assert.True(await mailbox.Acknowledge(session.SessionId, last));
        Assert.True(deletes.Hits > 0);
        await DeactivateAllAsync();

        Assert.Empty(await mailbox.Attach(Session(), Valid));
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
        deletes.Retire();
    }

    [Fact]
    public async Task AnAcknowledgementThatCouldNotBeMadeDurableFailsAndItsRetryMakesItSo()
    {
        var mailbox = await RegisterAsync();
        long last = 0;
        for (var i = 0; i < 20; i++)
        {
            last = (await mailbox.Send(null, $"{i}")).Seq;
        }

        var session = Session();
        await mailbox.Attach(session, Valid);
        var deletes = Faults.Add(new StorageFault { Operation = StorageOperation.Clear, GrainId = mailbox.GetGrainId(), StateNamePrefix = "queue.", Times = 100 });
        var header = Faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainId = mailbox.GetGrainId(), StateName = "clientId" });

        StorageAssert.IsStorageFailure(await Assert.ThrowsAnyAsync<Exception>(() => mailbox.Acknowledge(session.SessionId, last)));
        Assert.Equal(1, header.Hits);

        // The client retries its acknowledgement: this time the header takes it.
        Assert.True(await mailbox.Acknowledge(session.SessionId, last));
        await DeactivateAllAsync();

        Assert.Empty(await mailbox.Attach(Session(), Valid));
        var next = await mailbox.Send(null, "after");
        Assert.True(next.Seq > last);
        deletes.Retire();
    }

    [Fact]
    public async Task APushWhoseRemovalStorageRefusesIsAnsweredOnlineAndItsRemovalIsMadeByTheNextOne()
    {
        var mailbox = await RegisterAsync();
        var queued = await mailbox.Send(null, "queued");
        var session = Session(ackMode: false);
        Assert.Single(await mailbox.Attach(session, Valid));

        // The push of the next response also delivers nothing new of the queue; removing what the session
        // had (the segment, then the header that would stop naming it) is refused.
        var deletes = Faults.Add(new StorageFault { Operation = StorageOperation.Clear, GrainId = mailbox.GetGrainId(), StateNamePrefix = "queue.", Times = 1 });
        var header = Faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainId = mailbox.GetGrainId(), StateName = "clientId", Times = 1 });
        var pushed = await mailbox.Send(null, "pushed");
        Assert.Equal(SendStatus.Online, pushed.Status);
        Assert.Equal((1, 1), (deletes.Hits, header.Hits));

        // The next removal takes the delivered response along: no later login gets it again.
        Assert.Equal(SendStatus.Online, (await mailbox.Send(null, "later")).Status);
        Assert.Equal(0, (await mailbox.Status()).QueueLength);
        await mailbox.Detach(session.SessionId);
        await DeactivateAllAsync();
        Assert.Empty(await mailbox.Attach(Session(), Valid));
        Assert.True(queued.Seq > 0);
    }

    private async Task<IClientIdGrain> RegisterAsync()
    {
        var id = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null));
        return Grains.GetGrain<IClientIdGrain>(id);
    }

    private Task DeactivateAllAsync() =>
        Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

    // An object reference holds its observer weakly: the test keeps it, or a collection mid-test makes pushes time out.
    private readonly NullObserver _observer = new();

    private SessionRegistration Session(bool ackMode = true) =>
        new(Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(_observer), ackMode);

    private sealed class NullObserver : ISessionObserver
    {
        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) => Task.FromResult(true);

        public Task LoggedOut(string sessionId, string reason) => Task.CompletedTask;
    }
}
