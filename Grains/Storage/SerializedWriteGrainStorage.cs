using Orleans.Storage;

namespace Grains.Storage;

/// <summary>
/// Lets one write at a time through to SQLite from this process. SQLite has a single writer, and
/// Microsoft.Data.Sqlite waits for a busy database by sleeping the calling thread and retrying, so
/// concurrent grain writes would park scheduler threads for whole retry periods. Queued here they
/// wait asynchronously instead, and each write finds the lock free. Reads pass straight through:
/// in WAL mode they never wait for the writer.
/// </summary>
internal sealed class SerializedWriteGrainStorage(IGrainStorage inner) : IGrainStorage
{
    private readonly SemaphoreSlim _writer = new(1, 1);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ReadStateAsync(stateName, grainId, grainState);

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await _writer.WaitAsync();
        try
        {
            await inner.WriteStateAsync(stateName, grainId, grainState);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await _writer.WaitAsync();
        try
        {
            await inner.ClearStateAsync(stateName, grainId, grainState);
        }
        finally
        {
            _writer.Release();
        }
    }
}
