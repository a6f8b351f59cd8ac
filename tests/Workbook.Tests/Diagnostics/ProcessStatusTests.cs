using Workbook.Diagnostics;

namespace Workbook.Tests.Diagnostics;

/// <summary>Memory figures read from /proc status text, whatever the padding before the number.</summary>
public class ProcessStatusTests
{
    // As Linux writes them: right-aligned in 8 columns after a tab, so from 10 GB (8 digits of kB) on there is no space.
    static readonly string[] Status =
    {
        "Name:\tdotnet",
        "VmPeak:\t28471268 kB",
        "VmHWM:\t17929180 kB",
        "VmRSS:\t    1204 kB",
        "RssAnon:\t  987654 kB",
        "Threads:\t2",
    };

    [Theory]
    [InlineData("VmHWM", 17929180L * 1024)]   // 17.1 GiB: the line a Pythia-2.8B run wrote, which the old parser read as "kB"
    [InlineData("VmHWM:", 17929180L * 1024)]
    [InlineData("VmRSS", 1204L * 1024)]
    [InlineData("RssAnon", 987654L * 1024)]
    [InlineData("VmPeak", 28471268L * 1024)]
    public void ReadsTheFieldInBytes(string field, long bytes) => Assert.Equal(bytes, ProcessStatus.Bytes(Status, field));

    [Theory]
    [InlineData("VmSwap")]  // missing
    [InlineData("Threads")] // not a size in kB
    [InlineData("Name")]
    public void AFieldThatIsMissingOrNotInKilobytesIsNull(string field) => Assert.Null(ProcessStatus.Bytes(Status, field));

    [Fact]
    public void ThisProcessHasAPeakAtLeastItsCurrentSize()
    {
        if (!File.Exists("/proc/self/status")) return; // not Linux: nothing to read
        long now = ProcessStatus.Bytes("VmRSS"), peak = ProcessStatus.Bytes("VmHWM"); // the peak read after: it can only have grown
        Assert.True(now > 0 && peak >= now, $"VmHWM {peak}, VmRSS {now}");
    }
}
