using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Data.Sqlite;
using Tests.Infrastructure;

namespace Tests.Faults;

/// <summary>A database's own error leaves the grain as our serializable storage error, its code and message kept.</summary>
[Collection(ClusterCollection.Name)]
public sealed class StorageErrorTests(ClusterFixture fixture)
{
    [Fact]
    public async Task ADatabaseErrorReachesTheCallerAsAStorageErrorWithItsCodeAndMessage()
    {
        var client = fixture.Silos.Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken()));
        await client.Register(new ClientInformation("{}", null, null));
        fixture.Silos.Faults.Add(new StorageFault
        {
            Operation = StorageOperation.Write,
            GrainId = client.GetGrainId(),
            Exception = () => new SqliteException("database is locked", 5),
        });

        // The caller is the cluster client: the error crossed from the silo through serialization.
        var failure = StorageAssert.IsStorageFailure(await Assert.ThrowsAnyAsync<Exception>(() => client.Update(new ClientInformation("""{"a":1}""", null, null))));

        Assert.Equal("5", failure.Code);
        Assert.Contains("database is locked", failure.Message, StringComparison.Ordinal);
        Assert.Equal("{}", (await client.Get())?.Information.Json);
    }
}
