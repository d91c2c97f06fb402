"""Installs chupacabra, its twistd plugins and its client."""

from setuptools import find_packages, setup

setup(
    name="chupacabra",
    version="0.1.0",
    description="A self-hosted backend for turn-based online games",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=[
        *find_packages(include=["chupacabra", "chupacabra.*"]),
        "twisted.plugins",
        "chupacabra_client",
    ],
    package_dir={"chupacabra_client": "clients/chupacabra_client"},
    package_data={
        "twisted.plugins": ["chupacabra_plugins.py"],
        "chupacabra": ["py.typed"],
        "chupacabra_client": ["py.typed"],
    },
    install_requires=[
        "twisted>=24.7",
        "attrs>=23.1",
        "treq>=24.9",
        "service-identity>=24.1",
        "bcrypt>=4.1",
    ],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "mypy>=1.10",
            "mypy-zope>=1.0",
            "jsonschema>=4.20",
            "setuptools>=70.1",
            "psycopg[binary]>=3.1",
        ],
    },
    entry_points={
        "chupacabra.games": [
            "tictactoe = chupacabra.games.tictactoe:TicTacToe",
            "connect4 = chupacabra.games.connect4:ConnectFour",
            "reversi = chupacabra.games.reversi:Reversi",
        ],
        "console_scripts": ["chupacabra-play = chupacabra_client._play:main"],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: Games/Entertainment :: Board Games",
    ],
)
