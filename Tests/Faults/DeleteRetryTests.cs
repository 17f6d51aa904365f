using System.Collections.Immutable;
using Grains.Interfaces;
using Grains.Storage;
using Tests.Infrastructure;

namespace Tests.Faults;

/// <summary>
/// A <c>delete</c> that storage interrupts at any step leaves either a whole client or one whose
/// token authenticates nothing, and its retry always finishes the job.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DeleteRetryTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    [Theory]
    [InlineData("client", StorageOperation.Write, "the client's record is marked as being deleted")]
    [InlineData("clientId", StorageOperation.Clear, "the mailbox's header is deleted")]
    [InlineData("client", StorageOperation.Clear, "the client's record is deleted")]
    public async Task ADeleteThatFailsLeavesNoHalfDeletedClientAndItsRetryFinishes(string stateName, StorageOperation operation, string step)
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var client = Grains.GetGrain<IClientGrain>(digest);
        var id = await client.Register(new ClientInformation("""{"name":"x"}""", "x", null));
        var mailbox = Grains.GetGrain<IClientIdGrain>(id);
        for (var i = 0; i < 20; i++)
        {
            await mailbox.Send(null, $"{i}");
        }

        var target = stateName == "client" ? client.GetGrainId() : mailbox.GetGrainId();
        var fault = fixture.Silos.Faults.Add(new StorageFault { Operation = operation, GrainId = target, StateName = stateName });

        StorageAssert.IsStorageFailure(await Assert.ThrowsAnyAsync<Exception>(() => client.Delete()));
        Assert.True(fault.Hits == 1, $"the delete did not reach the step where {step}");

        // Whole, or authenticating nothing: never a token that works for a client without a mailbox.
        var snapshot = await client.Get();
        var status = await mailbox.Status();
        if (snapshot is not null)
        {
            Assert.True(status.Registered, $"after a failure when {step}, the token still authenticates a client whose mailbox is gone");
            Assert.Equal(20, status.QueueLength);
            Assert.Equal(id, snapshot.Id);
        }
        else
        {
            Assert.Null(await client.Update(new ClientInformation("{}", null, null)));
        }

        // The retry finishes: the token is dead, the id unknown, nothing stored.
        Assert.Equal(id, await client.Delete());
        Assert.Null(await client.Get());
        Assert.Equal(SendStatus.NotFound, (await mailbox.Send(null, "1")).Status);
        Assert.False((await mailbox.Status()).Registered);
        Assert.Null(await client.Delete());
        await Assert.ThrowsAnyAsync<Exception>(() => mailbox.Attach(Session(), TimeSpan.FromMinutes(1)));
    }

    private SessionRegistration Session() =>
        new(Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(new NullObserver()), AckMode: false);

    private sealed class NullObserver : ISessionObserver
    {
        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) => Task.FromResult(true);

        public Task LoggedOut(string sessionId, string reason) => Task.CompletedTask;
    }
}
