"""What every test file shares."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch intra-op thread per test process (pytest-xdist runs two processes on the two cores):
    on a machine shared with other jobs, torch's threads wait for each other at every small op, which
    made single tests 10-25 times slower (an autograd higher-derivative test took 25-35 s instead of
    1 s). Tests that need another count set it themselves and restore it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
