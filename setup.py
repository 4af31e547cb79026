from setuptools import find_packages, setup

setup(
    name="isles_pipeline",
    version="0.1.0",
    description="nnU-Net-style pipeline for CT perfusion stroke-core segmentation with the ISLES 2018 "
    "winning extractor-generator-segmentor chain",
    packages=find_packages(include=["isles_pipeline", "isles_pipeline.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy",
        "SimpleITK>=2.2",
        "batchgenerators>=0.25",
        "scikit-image",
        "scipy>=1.15",  # stats.bootstrap(rng=...)
        "acvl-utils>=0.2",
        "tqdm",
        "matplotlib",
    ],
    extras_require={"test": ["pytest", "pytest-xdist"]},
    entry_points={
        "console_scripts": [
            "isles_generate_phantom=isles_pipeline.cli.generate_phantom:main",
            "isles_phantom_report=isles_pipeline.cli.phantom_report:main",
            "isles_convert_isles2018=isles_pipeline.cli.convert_isles2018:main",
            "isles_convert_isles2024=isles_pipeline.cli.convert_isles2024:main",
            "isles_plan_and_preprocess=isles_pipeline.cli.plan_and_preprocess:main",
            "isles_extract_fingerprint=isles_pipeline.cli.plan_and_preprocess:extract_fingerprint_main",
            "isles_plan_experiment=isles_pipeline.cli.plan_and_preprocess:plan_experiment_main",
            "isles_preprocess=isles_pipeline.cli.plan_and_preprocess:preprocess_main",
            "isles_train=isles_pipeline.cli.train:main",
            "isles_predict=isles_pipeline.cli.predict:main",
            "isles_determine_postprocessing=isles_pipeline.cli.determine_postprocessing:main",
            "isles_evaluate=isles_pipeline.cli.evaluate:main",
            "isles_demo=isles_pipeline.cli.demo:main",
            "isles_benchmark=isles_pipeline.benchmarking.suite:main",
            "isles_perfusion_maps=isles_pipeline.cli.perfusion_maps:main",
        ]
    },
)
