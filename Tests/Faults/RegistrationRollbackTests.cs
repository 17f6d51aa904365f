using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Data.Sqlite;
using Tests.Infrastructure;

namespace Tests.Faults;

/// <summary>
/// A registration that fails leaves no mailbox that accepts sends: whichever of its writes storage
/// refuses, and even when its rollback is refused too.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RegistrationRollbackTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    private StorageFaults Faults => fixture.Silos.Faults;

    [Fact]
    public async Task SendsToTheIdOfARegistrationThatFailedAndCouldNotBeRolledBackAreNotFound()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var client = Grains.GetGrain<IClientGrain>(digest);

        // The client's record is refused, and so is every write of a mailbox header after the first
        // (the first points the new id at the digest; a later one would take it back).
        var record = Faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainId = client.GetGrainId(), StateName = "client" });
        var headers = Faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainType = "clientid", StateName = "clientId", Skip = 1, Times = 10 });
        try
        {
            StorageAssert.IsStorageFailure(await Assert.ThrowsAnyAsync<Exception>(() => client.Register(new ClientInformation("{}", null, null))));
        }
        finally
        {
            headers.Retire();
        }

        Assert.Equal(1, record.Hits);
        Assert.Null(await client.Get());
        foreach (var id in IdsNaming(digest))
        {
            Assert.Equal(SendStatus.NotFound, (await Grains.GetGrain<IClientIdGrain>(id).Send(null, "1")).Status);
        }
    }

    [Fact]
    public async Task ARegistrationWhoseIdCannotBeAssignedLeavesNeitherClientNorMailbox()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var client = Grains.GetGrain<IClientGrain>(digest);
        var assign = Faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainType = "clientid", StateName = "clientId" });

        StorageAssert.IsStorageFailure(await Assert.ThrowsAnyAsync<Exception>(() => client.Register(new ClientInformation("{}", null, null))));

        Assert.Equal(1, assign.Hits);
        Assert.Null(await client.Get());
        Assert.Empty(IdsNaming(digest));

        // The same token registers once storage is back.
        var id = await client.Register(new ClientInformation("{}", null, null));
        Assert.Equal(SendStatus.Queued, (await Grains.GetGrain<IClientIdGrain>(id).Send(null, "1")).Status);
    }

    /// <summary>The ids whose stored mailbox header names <paramref name="digest"/>.</summary>
    private List<long> IdsNaming(string digest)
    {
        using var connection = new SqliteConnection($"Data Source={fixture.Database.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT GrainIdN1 FROM GrainState WHERE GrainType = 'clientId' AND instr(CAST(Payload AS TEXT), $digest) > 0";
        command.Parameters.AddWithValue("$digest", digest);
        using var reader = command.ExecuteReader();
        var ids = new List<long>();
        while (reader.Read())
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }
}
